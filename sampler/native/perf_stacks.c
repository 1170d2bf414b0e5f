/*
 * xwalk_perf_stacks: stack samples of one thread taken by the kernel at the
 * instant (a perf event), never a stop: the user registers, a copy of the
 * user stack from sp upward and the kernel callchain. Raw perf_event_open(2),
 * no libraries. The event fd is exposed so an eBPF program can be attached
 * to it (xwalk_bpf's attach(perfFd, progFd): PERF_EVENT_IOC_SET_BPF).
 *
 * open(tid, kind: 'cpu'|'switch', rateOrPeriod, stackBytes, ringPages, disabled?) -> handle
 *   pid=tid, cpu=-1, inherit 0. 'cpu': PERF_COUNT_SW_CPU_CLOCK at
 *   rateOrPeriod Hz (freq=1). 'switch': PERF_COUNT_SW_CONTEXT_SWITCHES with
 *   sample_period=rateOrPeriod (1: a sample at every switch-out, taken in the
 *   context of the thread leaving the CPU, so its kernel callchain shows where
 *   it blocked) and context_switch=1: the ring also gets PERF_RECORD_SWITCH
 *   (in and out). Samples: TID | TIME | CALLCHAIN | REGS_USER | STACK_USER,
 *   exclude_callchain_user (user frames are unwound from the stack copy),
 *   sample_regs_user = REG_MASK (perf_regs.c's: ax bx cx dx si di bp sp ip
 *   r8..r15, in that order), sample_stack_user = stackBytes (a multiple of 8,
 *   8..65528), clock CLOCK_MONOTONIC (compares with bpf_ktime_get_ns),
 *   sample_id_all (switch and lost records carry pid, tid, time). The ring is
 *   1 + ringPages pages (a power of two), woken at half full only.
 *   disabled: opened disabled; enable(handle) or xwalk_bpf's attach() starts it.
 * drain(handle, max) -> record[]   consumes up to max records of the ring:
 *   { type: 'sample', pid, tid, time: bigint, callchain: BigUint64Array (as the
 *     kernel wrote it: PERF_CONTEXT_* markers KEPT), abi (PERF_SAMPLE_REGS_ABI_*),
 *     regs: BigUint64Array (17, REG_MASK order) | null (abi NONE),
 *     stack: Buffer (dyn_size bytes from regs' sp), stackSize (the size the
 *     kernel reserved, <= stackBytes) }
 *   { type: 'switch', out: boolean, preempt: boolean, pid, tid, time: bigint }
 *   PERF_RECORD_LOST / LOST_SAMPLES add to lost(); a record whose sizes do not
 *   hold together is skipped and counted in corrupt(); a header that cannot be
 *   followed drops the rest of the ring (counted too). No read leaves the ring.
 * wait(handles[], ms) -> boolean   poll(2): one of the rings passed its watermark
 * fd(handle) -> number   lost(handle) -> number   corrupt(handle) -> number
 * enable(handle)   close(handle)
 *
 * Errors are thrown as Error("what: strerror") with .errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <node_api.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "perf_ring.h"
#include "x86_perf_regs.h"
#include "xwalk_napi.h"

#define MAX_STACK_BYTES 65528
/* A record's size is a u16: no record is larger. */
#define MAX_RECORD 65536

struct stack_ring {
    struct perf_ring_map map; /* first: perf_perf_ring_finalize frees it */
    uint64_t lost;
    uint64_t corrupt;
    unsigned char record[MAX_RECORD]; /* one record, copied out of the ring (records wrap) */
};

static void throw_errno(napi_env env, const char *what, int err)
{
    char line[256];
    snprintf(line, sizeof line, "%s: %s", what, strerror(err));
    throw_error(env, line, err, NULL);
}

static napi_value make_u64s(napi_env env, const unsigned char *src, size_t n)
{
    void *dst;
    napi_value buffer, out;
    if (napi_create_arraybuffer(env, n * 8, &dst, &buffer) != napi_ok ||
        napi_create_typedarray(env, napi_biguint64_array, n, buffer, 0, &out) != napi_ok)
        return NULL;
    if (n) memcpy(dst, src, n * 8);
    return out;
}

static void set(napi_env env, napi_value obj, const char *name, napi_value v)
{
    napi_set_named_property(env, obj, name, v);
}

static struct stack_ring *ring_of(napi_env env, napi_value v, int open_only)
{
    void *data = NULL;
    napi_valuetype t;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok ||
        !data) {
        napi_throw_type_error(env, NULL, "xwalk_perf_stacks: not a handle from open()");
        return NULL;
    }
    struct stack_ring *r = data;
    if (open_only && r->map.fd < 0) {
        throw_errno(env, "xwalk_perf_stacks: handle closed", EBADF);
        return NULL;
    }
    return r;
}

static napi_value js_open(napi_env env, napi_callback_info info)
{
    static const char usage[] = "open(tid, kind: 'cpu'|'switch', rateOrPeriod, stackBytes, ringPages, disabled?)";
    napi_value argv[6];
    char kind[16];
    size_t kind_len;
    int64_t tid, rate, stack_bytes, ring_pages;
    bool disabled = false;
    if (!get_args(env, info, 5, 6, argv, NULL, usage) || !get_i64(env, argv[0], &tid, usage) ||
        napi_get_value_string_utf8(env, argv[1], kind, sizeof kind, &kind_len) != napi_ok ||
        !get_i64(env, argv[2], &rate, usage) || !get_i64(env, argv[3], &stack_bytes, usage) ||
        !get_i64(env, argv[4], &ring_pages, usage)) {
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (!pending) napi_throw_type_error(env, NULL, usage);
        return NULL;
    }
    napi_valuetype t;
    napi_typeof(env, argv[5], &t);
    if (t == napi_boolean) napi_get_value_bool(env, argv[5], &disabled);
    int is_cpu = strcmp(kind, "cpu") == 0, is_switch = strcmp(kind, "switch") == 0;
    if ((!is_cpu && !is_switch) || tid <= 0 || tid > INT32_MAX || rate <= 0 || stack_bytes < 8 ||
        stack_bytes > MAX_STACK_BYTES || stack_bytes % 8 || ring_pages < 1 || ring_pages > (1 << 20) ||
        (ring_pages & (ring_pages - 1))) {
        napi_throw_range_error(env, NULL, usage);
        return NULL;
    }

    struct perf_event_attr attr;
    perf_attr_software(&attr, is_cpu ? PERF_COUNT_SW_CPU_CLOCK : PERF_COUNT_SW_CONTEXT_SWITCHES);
    if (is_cpu) {
        attr.freq = 1;
        attr.sample_freq = (uint64_t)rate;
    } else {
        attr.sample_period = (uint64_t)rate;
        attr.context_switch = 1;
    }
    attr.sample_type =
        PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;
    attr.exclude_callchain_user = 1;
    attr.sample_regs_user = REG_MASK;
    attr.sample_stack_user = (uint32_t)stack_bytes;
    attr.use_clockid = 1;
    attr.clockid = CLOCK_MONOTONIC;
    attr.sample_id_all = 1;
    attr.inherit = 0;
    attr.disabled = disabled;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t data_size = (uint64_t)page * (uint64_t)ring_pages;
    /* Woken at half full (a reader drains on its own schedule): never once a sample. */
    attr.watermark = 1;
    attr.wakeup_watermark = (uint32_t)(data_size / 2 > UINT32_MAX ? UINT32_MAX : data_size / 2);

    int fd = (int)syscall(SYS_perf_event_open, &attr, (pid_t)tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
        throw_errno(env, is_cpu ? "perf_event_open(cpu-clock)" : "perf_event_open(context-switches)", errno);
        return NULL;
    }
    struct stack_ring *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        throw_errno(env, "xwalk_perf_stacks", ENOMEM);
        return NULL;
    }
    int e = perf_ring_map(&r->map, fd, (uint64_t)ring_pages);
    if (e < 0) {
        free(r);
        throw_errno(env, "mmap(perf ring)", -e);
        return NULL;
    }
    napi_value handle;
    if (napi_create_external(env, r, perf_ring_finalize, NULL, &handle) != napi_ok) {
        perf_ring_finalize(env, r, NULL);
        napi_throw_error(env, NULL, "xwalk_perf_stacks: no external");
        return NULL;
    }
    return handle;
}

/* A bounded reader over one record. */
struct cursor {
    const unsigned char *p;
    size_t off, size;
    int bad;
};

static uint64_t take_u64(struct cursor *c)
{
    uint64_t v = 0;
    if (c->bad || c->size - c->off < 8) {
        c->bad = 1;
        return 0;
    }
    memcpy(&v, c->p + c->off, 8);
    c->off += 8;
    return v;
}

static const unsigned char *take(struct cursor *c, uint64_t n)
{
    if (c->bad || n > c->size - c->off) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *at = c->p + c->off;
    c->off += (size_t)n;
    return at;
}

/* pid, tid (u32 each), time: the layout of TID then TIME, in samples and in sample_id. */
static void take_tid_time(struct cursor *c, uint32_t *pid, uint32_t *tid, uint64_t *time)
{
    uint64_t both = take_u64(c);
    *pid = (uint32_t)both;
    *tid = (uint32_t)(both >> 32);
    *time = take_u64(c);
}

static napi_value parse_sample(napi_env env, struct cursor *c)
{
    uint32_t pid, tid;
    uint64_t time;
    take_tid_time(c, &pid, &tid, &time);
    uint64_t nr = take_u64(c);
    const unsigned char *ips = take(c, nr > (MAX_RECORD / 8) ? (uint64_t)MAX_RECORD : nr * 8);
    uint64_t abi = take_u64(c);
    const unsigned char *regs = abi != PERF_SAMPLE_REGS_ABI_NONE ? take(c, NREGS * 8) : NULL;
    uint64_t size = take_u64(c);
    const unsigned char *stack = size ? take(c, size) : NULL;
    uint64_t dyn = size ? take_u64(c) : 0;
    if (c->bad || dyn > size) return NULL;

    napi_value obj, v;
    napi_create_object(env, &obj);
    napi_create_string_utf8(env, "sample", NAPI_AUTO_LENGTH, &v);
    set(env, obj, "type", v);
    set(env, obj, "pid", make_num(env, pid));
    set(env, obj, "tid", make_num(env, tid));
    napi_create_bigint_uint64(env, time, &v);
    set(env, obj, "time", v);
    v = make_u64s(env, ips, (size_t)nr);
    if (!v) return NULL;
    set(env, obj, "callchain", v);
    set(env, obj, "abi", make_num(env, (double)abi));
    if (regs) {
        v = make_u64s(env, regs, NREGS);
        if (!v) return NULL;
    } else {
        napi_get_null(env, &v);
    }
    set(env, obj, "regs", v);
    if (napi_create_buffer_copy(env, (size_t)dyn, stack ? (const void *)stack : (const void *)"", NULL, &v) != napi_ok)
        return NULL;
    set(env, obj, "stack", v);
    set(env, obj, "stackSize", make_num(env, (double)size));
    return obj;
}

static napi_value parse_switch(napi_env env, struct cursor *c, uint16_t misc)
{
    uint32_t pid, tid;
    uint64_t time;
    take_tid_time(c, &pid, &tid, &time);
    if (c->bad) return NULL;
    napi_value obj, v;
    napi_create_object(env, &obj);
    napi_create_string_utf8(env, "switch", NAPI_AUTO_LENGTH, &v);
    set(env, obj, "type", v);
    set(env, obj, "out", make_bool(env, misc & PERF_RECORD_MISC_SWITCH_OUT));
    set(env, obj, "preempt", make_bool(env, misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT));
    set(env, obj, "pid", make_num(env, pid));
    set(env, obj, "tid", make_num(env, tid));
    napi_create_bigint_uint64(env, time, &v);
    set(env, obj, "time", v);
    return obj;
}

static napi_value js_drain(napi_env env, napi_callback_info info)
{
    static const char usage[] = "drain(handle, max)";
    napi_value argv[2];
    int64_t max;
    if (!get_args(env, info, 2, 2, argv, NULL, usage) || !get_i64(env, argv[1], &max, usage)) return NULL;
    struct stack_ring *r = ring_of(env, argv[0], 1);
    if (!r) return NULL;
    napi_value out;
    napi_create_array(env, &out);
    uint32_t n = 0;

    uint64_t head = __atomic_load_n(&r->map.meta->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = r->map.meta->data_tail;
    if (head - tail > r->map.data_size) {
        /* Not what the kernel writes in a ring we own: nothing in it can be trusted. */
        r->corrupt++;
        tail = head;
    }
    while (n < max && head - tail >= sizeof(struct perf_event_header)) {
        struct perf_event_header h;
        perf_ring_copy(&r->map, tail, &h, sizeof h);
        if (h.size < sizeof h || h.size % 8 || h.size > head - tail) {
            /* A header that cannot be followed: the rest of the ring is dropped, never read past. */
            r->corrupt++;
            tail = head;
            break;
        }
        perf_ring_copy(&r->map, tail, r->record, h.size);
        tail += h.size;
        struct cursor c = { r->record, sizeof h, h.size, 0 };
        napi_value rec = NULL;
        switch (h.type) {
        case PERF_RECORD_SAMPLE:
            rec = parse_sample(env, &c);
            if (!rec) r->corrupt++;
            break;
        case PERF_RECORD_SWITCH:
            rec = parse_switch(env, &c, h.misc);
            if (!rec) r->corrupt++;
            break;
        case PERF_RECORD_LOST: {
            take_u64(&c); /* id */
            uint64_t lost = take_u64(&c);
            if (c.bad) r->corrupt++;
            else r->lost += lost;
            break;
        }
        case PERF_RECORD_LOST_SAMPLES: {
            uint64_t lost = take_u64(&c);
            if (c.bad) r->corrupt++;
            else r->lost += lost;
            break;
        }
        default:
            break; /* throttle, unthrottle...: not ours to report */
        }
        if (rec) napi_set_element(env, out, n++, rec);
    }
    __atomic_store_n(&r->map.meta->data_tail, tail, __ATOMIC_RELEASE);
    return out;
}

#define MAX_WAIT 4096

static napi_value js_wait(napi_env env, napi_callback_info info)
{
    static const char usage[] = "wait(handles[], ms)";
    napi_value argv[2];
    int64_t ms;
    uint32_t n = 0;
    bool is_array = false;
    if (!get_args(env, info, 2, 2, argv, NULL, usage) || !get_i64(env, argv[1], &ms, usage)) return NULL;
    if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok ||
        n > MAX_WAIT) {
        napi_throw_type_error(env, NULL, usage);
        return NULL;
    }
    struct pollfd *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        throw_errno(env, "wait", ENOMEM);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        napi_value h;
        struct stack_ring *r;
        if (napi_get_element(env, argv[0], i, &h) != napi_ok || !(r = ring_of(env, h, 1))) {
            free(p);
            return NULL;
        }
        p[i].fd = r->map.fd;
        p[i].events = POLLIN;
    }
    int got = poll(p, n, ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms);
    int e = errno, ready = 0;
    for (uint32_t i = 0; got > 0 && i < n; i++) ready |= (p[i].revents & POLLIN) != 0;
    free(p);
    if (got < 0 && e != EINTR) {
        throw_errno(env, "poll(perf ring)", e);
        return NULL;
    }
    return make_bool(env, ready);
}

static napi_value js_enable(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    if (!get_args(env, info, 1, 1, argv, NULL, "enable(handle)")) return NULL;
    struct stack_ring *r = ring_of(env, argv[0], 1);
    if (!r) return NULL;
    if (ioctl(r->map.fd, PERF_EVENT_IOC_ENABLE, 0) < 0) throw_errno(env, "ioctl(PERF_EVENT_IOC_ENABLE)", errno);
    return NULL;
}

static napi_value js_fd(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    if (!get_args(env, info, 1, 1, argv, NULL, "fd(handle)")) return NULL;
    struct stack_ring *r = ring_of(env, argv[0], 1);
    return r ? make_num(env, r->map.fd) : NULL;
}

static napi_value js_lost(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    if (!get_args(env, info, 1, 1, argv, NULL, "lost(handle)")) return NULL;
    struct stack_ring *r = ring_of(env, argv[0], 0);
    return r ? make_num(env, (double)r->lost) : NULL;
}

static napi_value js_corrupt(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    if (!get_args(env, info, 1, 1, argv, NULL, "corrupt(handle)")) return NULL;
    struct stack_ring *r = ring_of(env, argv[0], 0);
    return r ? make_num(env, (double)r->corrupt) : NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    if (!get_args(env, info, 1, 1, argv, NULL, "close(handle)")) return NULL;
    struct stack_ring *r = ring_of(env, argv[0], 0);
    if (r) perf_ring_unmap(&r->map);
    return NULL;
}

static napi_value init(napi_env env, napi_value exports)
{
    static const struct export_fn fns[] = {
        { "open", js_open },       { "drain", js_drain }, { "wait", js_wait },   { "enable", js_enable },
        { "fd", js_fd },           { "lost", js_lost },   { "corrupt", js_corrupt }, { "close", js_close },
    };
    return export_functions(env, exports, fns, sizeof fns / sizeof fns[0]);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
