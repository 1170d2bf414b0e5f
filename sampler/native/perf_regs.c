/*
 * xwalk_perf: a thread's user registers from the kernel's perf events,
 * without stopping it.
 *
 * open(tid, period_ns) -> handle | -errno
 *   A software task-clock event on one thread: every period_ns of the
 *   thread's own CPU time the kernel writes a sample of its user registers
 *   (PERF_SAMPLE_REGS_USER) and the time (CLOCK_MONOTONIC) into a ring.
 *   perf_event_open needs the ptrace *access* check, as process_vm_readv
 *   does, never an attach: the thread runs on while it is sampled. At
 *   perf_event_paranoid 3 (Debian's default) a user without CAP_PERFMON
 *   cannot open it; root can.
 * latest(handle, max_age_ns, wait_ms) -> BigUint64Array | null | -errno
 *   Empties the ring and gives the newest sample's registers, in the order
 *   of REGS below, when it was taken at most max_age_ns ago. With none that
 *   fresh, waits up to wait_ms for the next sample. null when there is none
 *   (the thread is not running).
 * close(handle)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <node_api.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "perf_ring.h"
#include "x86_perf_regs.h"
#include "xwalk_napi.h"


/* Data pages of the ring (a power of two): 204 samples of 160 bytes, 0.2 s of the thread's CPU at one a
 * millisecond. A reader that comes back later finds it full (the kernel then drops new samples) and empties it. */
#define RING_PAGES 8

struct perf_ring {
    struct perf_ring_map map; /* first: perf_perf_ring_finalize frees it */
    /* The newest sample drained so far: a read soon after the one that drained it gets it again. */
    int have;
    uint64_t time;
    uint64_t regs[NREGS];
};

static napi_value make_int(napi_env env, int64_t v)
{
    napi_value out;
    napi_create_int64(env, v, &out);
    return out;
}

static napi_value perf_open(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    int32_t tid;
    int64_t period;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
        napi_get_value_int32(env, argv[0], &tid) != napi_ok || napi_get_value_int64(env, argv[1], &period) != napi_ok ||
        tid <= 0 || period <= 0) {
        napi_throw_type_error(env, NULL, "open(tid, period_ns)");
        return NULL;
    }
    struct perf_event_attr attr;
    perf_attr_software(&attr, PERF_COUNT_SW_TASK_CLOCK);
    attr.sample_period = (uint64_t)period;
    attr.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER;
    attr.sample_regs_user = REG_MASK;
    /* A sample taken in the kernel holds the registers of the system call's entry, never the interpreter's
     * state; and leaving the kernel out lets a user who may read the process open the event at
     * perf_event_paranoid 2 (Debian's default 3 needs CAP_PERFMON). */
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;
    attr.wakeup_events = 1;
    int fd = (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) return make_int(env, -errno);

    struct perf_ring *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return make_int(env, -ENOMEM);
    }
    int e = perf_ring_map(&r->map, fd, RING_PAGES);
    if (e < 0) {
        free(r);
        return make_int(env, e);
    }
    napi_value handle;
    if (napi_create_external(env, r, perf_ring_finalize, NULL, &handle) != napi_ok) {
        perf_ring_finalize(env, r, NULL);
        napi_throw_error(env, NULL, "xwalk_perf: no external");
        return NULL;
    }
    return handle;
}

static struct perf_ring *ring_of(napi_env env, napi_value v)
{
    void *data = NULL;
    if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
        napi_throw_type_error(env, NULL, "xwalk_perf: not a handle from open()");
        return NULL;
    }
    return data;
}

/* Every record in the ring is consumed; the newest sample with 64-bit user registers is kept. */
static void drain(struct perf_ring *r)
{
    uint64_t head = __atomic_load_n(&r->map.meta->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = r->map.meta->data_tail;
    while (tail + sizeof(struct perf_event_header) <= head) {
        struct perf_event_header h;
        perf_ring_copy(&r->map, tail, &h, sizeof h);
        if (h.size < sizeof h || tail + h.size > head) break;
        if (h.type == PERF_RECORD_SAMPLE && h.size >= sizeof h + 16 + NREGS * 8) {
            uint64_t t, abi;
            perf_ring_copy(&r->map, tail + sizeof h, &t, 8);
            perf_ring_copy(&r->map, tail + sizeof h + 8, &abi, 8);
            if (abi == PERF_SAMPLE_REGS_ABI_64) {
                r->time = t;
                perf_ring_copy(&r->map, tail + sizeof h + 16, r->regs, NREGS * 8);
                r->have = 1;
            }
        }
        tail += h.size;
    }
    __atomic_store_n(&r->map.meta->data_tail, head, __ATOMIC_RELEASE);
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static napi_value perf_latest(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3];
    int64_t max_age, wait_ms;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
        napi_get_value_int64(env, argv[1], &max_age) != napi_ok || napi_get_value_int64(env, argv[2], &wait_ms) != napi_ok) {
        napi_throw_type_error(env, NULL, "latest(handle, max_age_ns, wait_ms)");
        return NULL;
    }
    struct perf_ring *r = ring_of(env, argv[0]);
    if (!r) return NULL;
    if (r->map.fd < 0) return make_int(env, -EBADF);

    drain(r);
    /* poll() reports a sample written since the last poll, drained or not: it is asked again until a fresh
     * sample arrives or the time is up. */
    uint64_t deadline = monotonic_ns() + (uint64_t)wait_ms * 1000000ULL;
    while (!r->have || monotonic_ns() - r->time > (uint64_t)max_age) {
        uint64_t now = monotonic_ns();
        if (now >= deadline) break;
        struct pollfd p = { .fd = r->map.fd, .events = POLLIN };
        int left_ms = (int)((deadline - now + 999999) / 1000000);
        if (poll(&p, 1, left_ms) < 0 && errno != EINTR) break;
        drain(r);
    }
    napi_value out;
    if (!r->have || monotonic_ns() - r->time > (uint64_t)max_age) {
        napi_get_null(env, &out);
        return out;
    }
    void *dst;
    napi_value buffer;
    if (napi_create_arraybuffer(env, sizeof r->regs, &dst, &buffer) != napi_ok ||
        napi_create_typedarray(env, napi_biguint64_array, NREGS, buffer, 0, &out) != napi_ok) {
        napi_throw_error(env, NULL, "xwalk_perf: no array");
        return NULL;
    }
    memcpy(dst, r->regs, sizeof r->regs);
    return out;
}

static napi_value perf_close(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1) {
        napi_throw_type_error(env, NULL, "close(handle)");
        return NULL;
    }
    struct perf_ring *r = ring_of(env, argv[0]);
    if (r) perf_ring_unmap(&r->map);
    return NULL;
}

static napi_value init(napi_env env, napi_value exports)
{
    static const struct export_fn fns[] = {
        { "open", perf_open }, { "latest", perf_latest }, { "close", perf_close },
    };
    return export_functions(env, exports, fns, sizeof fns / sizeof fns[0]);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
