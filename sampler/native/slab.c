/*
 * slab(bytes) -> ArrayBuffer: memory for the bytes a snapshot copies, in
 * huge pages where the kernel gives them: 2 MiB aligned, and
 * madvise(MADV_HUGEPAGE) (why: sampler/memory/slabs.ts). Where the kernel
 * gives none (transparent_hugepage=never, or a process or cgroup that
 * turned it off), the memory is plain pages, as an ArrayBuffer's would be.
 * V8 counts the buffer as the collector's external memory, as it does any
 * ArrayBuffer's; it is unmapped by the finalizer, on the turn of the event
 * loop after the buffer is collected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <sys/mman.h>
#include "slab.h"
#include "xwalk_napi.h"

#define HUGE ((size_t)2 << 20)
#define MAX_SLAB ((uint64_t)1 << 40)
#define USAGE "slab(bytes): bytes must be a whole number from 1 to 2^40"

static void unmap(napi_env env, void *data, void *hint)
{
    (void)env;
    munmap(data, (size_t)(uintptr_t)hint);
}

/* len bytes (a multiple of HUGE) at a HUGE-aligned address, or NULL: HUGE more are mapped, and the slack unmapped. */
static void *map_aligned(size_t len)
{
    uint8_t *p = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *start = (uint8_t *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    if (start > p) munmap(p, (size_t)(start - p));
    munmap(start + len, (size_t)(p + len + HUGE - (start + len)));
    return start;
}

static napi_value slab(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    double want;
    if (!get_args(env, info, 1, 1, argv, NULL, USAGE)) return NULL;
    if (napi_get_value_double(env, argv[0], &want) != napi_ok || !(want >= 1) || want > (double)MAX_SLAB || want != floor(want)) {
        napi_throw_type_error(env, NULL, USAGE);
        return NULL;
    }
    size_t len = ((size_t)want + HUGE - 1) & ~(HUGE - 1);
    void *mem = map_aligned(len);
    if (!mem) {
        throw_error(env, "slab: mmap failed", errno, NULL);
        return NULL;
    }
    madvise(mem, len, MADV_HUGEPAGE); /* fails only on a kernel built without huge pages: plain pages then */
    napi_value out;
    if (napi_create_external_arraybuffer(env, mem, len, unmap, (void *)(uintptr_t)len, &out) != napi_ok) {
        munmap(mem, len);
        throw_error(env, "slab: the memory could not be given to JavaScript", 0, NULL);
        return NULL;
    }
    return out;
}

void slab_register(napi_env env, napi_value exports)
{
    static const struct export_fn fns[] = { { "slab", slab } };
    export_functions(env, exports, fns, 1);
}
