/*
 * slab(bytes) -> ArrayBuffer: memory for the bytes a snapshot copies, in
 * huge pages where the kernel gives them (madvise MADV_HUGEPAGE on 2 MiB
 * aligned memory). Copying 24 MiB into fresh 4 KiB pages costs 6,000 page
 * faults: 100 ms of kernel time on a virtual machine here, against 3 ms in
 * huge pages. The buffer is freed (munmap) when the ArrayBuffer is collected,
 * and counted meanwhile as memory the collector should know of.
 * Where huge pages are off (transparent_hugepage=never), madvise fails and
 * the memory is plain pages, as an ArrayBuffer's would be.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include "slab.h"
#include "xwalk_napi.h"

#define HUGE (2UL << 20)

static void unmap(napi_env env, void *data, void *hint)
{
    int64_t left;
    munmap(data, (size_t)(uintptr_t)hint);
    napi_adjust_external_memory(env, -(int64_t)(uintptr_t)hint, &left);
}

/* len bytes (a multiple of HUGE once rounded up) at a HUGE-aligned address, or NULL. */
static void *map_aligned(size_t len)
{
    uint8_t *p = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *start = (uint8_t *)(((uintptr_t)p + HUGE - 1) & ~(HUGE - 1));
    if (start > p) munmap(p, (size_t)(start - p));
    if (start + len < p + len + HUGE) munmap(start + len, (size_t)(p + len + HUGE - (start + len)));
    return start;
}

static napi_value slab(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    double want;
    if (!get_args(env, info, 1, 1, argv, NULL, "slab(bytes)")) return NULL;
    if (napi_get_value_double(env, argv[0], &want) != napi_ok || !(want > 0) || want > (double)(1UL << 40)) {
        napi_throw_type_error(env, NULL, "slab(bytes): bytes must be a positive number");
        return NULL;
    }
    size_t len = ((size_t)want + HUGE - 1) & ~(HUGE - 1);
    void *mem = map_aligned(len);
    if (!mem) {
        throw_error(env, "slab: mmap failed", errno, NULL);
        return NULL;
    }
    madvise(mem, len, MADV_HUGEPAGE);
    napi_value out;
    if (napi_create_external_arraybuffer(env, mem, len, unmap, (void *)(uintptr_t)len, &out) != napi_ok) {
        munmap(mem, len);
        throw_error(env, "slab: the memory could not be given to JavaScript", 0, NULL);
        return NULL;
    }
    int64_t held;
    napi_adjust_external_memory(env, (int64_t)len, &held); /* the collector counts it, as an ArrayBuffer's own memory */
    return out;
}

void slab_register(napi_env env, napi_value exports)
{
    napi_value fn;
    napi_create_function(env, "slab", NAPI_AUTO_LENGTH, slab, NULL, &fn);
    napi_set_named_property(env, exports, "slab", fn);
}
