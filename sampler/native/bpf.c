/*
 * xwalk_bpf: load and run eBPF programs with raw bpf(2) and perf_event_open(2):
 * no libbpf, no clang, no tracefs. Everything is a file descriptor, so when
 * the process that holds them exits (or crashes) the kernel detaches all.
 *
 * progLoad(type: 'perf_event'|'kprobe', insns: Buffer, license, name?) -> fd
 *   BPF_PROG_LOAD of 8-byte struct bpf_insn. A uprobe program is a 'kprobe'
 *   one. Loaded once without a log; when refused, again with log_level 1 into
 *   a 16 MiB buffer: the Error thrown has one line (the verifier's reason)
 *   and .log (the log's last 40 lines), .errno. EPERM/ENOSYS: "BPF is not
 *   available here: ...".
 * mapCreate(type: 'array'|'percpu_array'|'hash'|'percpu_hash'|'ringbuf', keySize, valueSize, maxEntries, name?) -> fd
 * mapLookup(fd, key, value) -> boolean   mapUpdate(fd, key, value)   mapDelete(fd, key) -> boolean
 * mapNextKey(fd, key | null, next) -> boolean   (false after the last key)
 *   Buffers are checked against the map's own sizes (BPF_OBJ_GET_INFO_BY_FD);
 *   a per-CPU map's value is round_up(valueSize, 8) * possibleCpus() bytes.
 * possibleCpus() -> number   (/sys/devices/system/cpu/possible)
 * perfClock(tid, freqHz) -> fd   a software CPU clock on one thread, disabled until attach
 * perfUprobe(path, fileOffset, pid) -> fd   a uprobe on one process (cpu -1): the
 *   kernel installs the breakpoint only in mms of the events' targets.
 * attach(perfFd, progFd)   PERF_EVENT_IOC_SET_BPF then PERF_EVENT_IOC_ENABLE
 * close(fd)
 * ringbufOpen(mapFd, size) -> handle   ringbufDrain(handle, max) -> Buffer[]
 * ringbufWait(handle, ms) -> boolean (a record is there)   ringbufClose(handle)
 * enableStats() -> fd   BPF_STATS_RUN_TIME while the fd is held, nothing global left behind
 * progInfo(fd) -> { id, runCount, runTimeNs, jitedLen, xlatedLen, verifiedInsns }
 * progIds() -> number[]   every loaded program's id (BPF_PROG_GET_NEXT_ID)
 *
 * Every other failure throws an Error "what: strerror" with .errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
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
#include <unistd.h>

#include "xwalk_napi.h"

#define LOG_SIZE (16u << 20)
#define LOG_TAIL_LINES 40

static long sys_bpf(int cmd, union bpf_attr *attr)
{
    return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* "what: strerror", or "BPF is not available here: ..." when the kernel refuses BPF itself. */
static napi_value throw_errno(napi_env env, const char *what, int err)
{
    char line[256];
    if (err == EPERM || err == ENOSYS)
        snprintf(line, sizeof line, "BPF is not available here: %s: %s%s", what, strerror(err),
                 err == EPERM ? " (needs root or CAP_BPF+CAP_PERFMON)" : "");
    else
        snprintf(line, sizeof line, "%s: %s", what, strerror(err));
    throw_error(env, line, err, NULL);
    return NULL;
}

static int get_fd(napi_env env, napi_value v, int *fd, const char *usage)
{
    int64_t n;
    if (!get_i64(env, v, &n, usage)) return 0;
    if (n < 0 || n > INT32_MAX) {
        napi_throw_range_error(env, NULL, usage);
        return 0;
    }
    *fd = (int)n;
    return 1;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t size, const char *usage)
{
    size_t len;
    if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok || len + 1 >= size) {
        napi_throw_type_error(env, NULL, usage);
        return 0;
    }
    return 1;
}

/* An object's name as the kernel takes it: [A-Za-z0-9_.], at most 15 of them (others become '_', the rest is cut). */
static int get_name(napi_env env, napi_value v, char name[BPF_OBJ_NAME_LEN], const char *usage)
{
    char full[256];
    if (!get_string(env, v, full, sizeof full, usage)) return 0;
    size_t j = 0;
    for (size_t i = 0; full[i] && j < BPF_OBJ_NAME_LEN - 1; i++) {
        char c = full[i];
        name[j++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ? c : '_';
    }
    name[j] = 0;
    return 1;
}

/* A Buffer as bytes. */
static int get_bytes(napi_env env, napi_value v, void **data, size_t *len, const char *usage)
{
    bool is;
    if (napi_is_buffer(env, v, &is) == napi_ok && is) {
        if (napi_get_buffer_info(env, v, data, len) == napi_ok) return 1;
    }
    napi_throw_type_error(env, NULL, usage);
    return 0;
}

/* ---- the verifier's log ---- */

/* Lines of the log that sum up rather than explain. */
static int is_summary(const char *line, size_t len)
{
    static const char *const prefixes[] = { "processed ", "verification time", "stack depth", "mark_precise",
                                            "max_states_per_insn", "peak_states" };
    if (len == 0) return 1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(line, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

/* "12: (bf) r0 = r2": an instruction as the verifier prints it before checking it. */
static int is_insn_line(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && line[i] >= '0' && line[i] <= '9') i++;
    return i > 0 && i + 3 <= len && line[i] == ':' && line[i + 1] == ' ' && line[i + 2] == '(';
}

static void copy_line(char *dst, size_t size, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t')) len--;
    if (len > size - 1) len = size - 1;
    memcpy(dst, line, len);
    dst[len] = 0;
}

/* The last LOG_TAIL_LINES lines of log (in place: returns a pointer into it); the last line that explains
 * (the verifier's reason) and the instruction it was checking before it, copied into reason and insn. */
static const char *log_tail(char *log, char *reason, size_t reason_size, char *insn, size_t insn_size)
{
    size_t n = strlen(log);
    while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' ')) log[--n] = 0;
    reason[0] = insn[0] = 0;
    size_t end = n, start = n;
    int lines = 0;
    while (end > 0) {
        size_t begin = end;
        while (begin > 0 && log[begin - 1] != '\n') begin--;
        if (!reason[0]) {
            if (!is_summary(log + begin, end - begin)) copy_line(reason, reason_size, log + begin, end - begin);
        } else if (!insn[0] && is_insn_line(log + begin, end - begin))
            copy_line(insn, insn_size, log + begin, end - begin);
        if (lines < LOG_TAIL_LINES) {
            start = begin;
            lines++;
        } else if (insn[0])
            break;
        end = begin > 0 ? begin - 1 : 0;
    }
    return log + start;
}

static napi_value prog_load(napi_env env, napi_callback_info info)
{
    static const char usage[] = "progLoad(type: 'perf_event'|'kprobe', insns: Buffer, license: string, name?: string)";
    napi_value argv[4];
    size_t argc;
    char type[32], license[128], name[BPF_OBJ_NAME_LEN] = "";
    void *insns;
    size_t len;
    if (!get_args(env, info, 3, 4, argv, &argc, usage) || !get_string(env, argv[0], type, sizeof type, usage) ||
        !get_bytes(env, argv[1], &insns, &len, usage) || !get_string(env, argv[2], license, sizeof license, usage))
        return NULL;
    if (argc == 4 && !get_name(env, argv[3], name, usage)) return NULL;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    if (strcmp(type, "perf_event") == 0)
        attr.prog_type = BPF_PROG_TYPE_PERF_EVENT;
    else if (strcmp(type, "kprobe") == 0)
        attr.prog_type = BPF_PROG_TYPE_KPROBE;
    else {
        napi_throw_type_error(env, NULL, usage);
        return NULL;
    }
    if (len == 0 || len % sizeof(struct bpf_insn) != 0) {
        napi_throw_range_error(env, NULL, "progLoad: insns must be a whole number of 8-byte instructions");
        return NULL;
    }
    attr.insn_cnt = (uint32_t)(len / sizeof(struct bpf_insn));
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.license = (uint64_t)(uintptr_t)license;
    memcpy(attr.prog_name, name, sizeof name);

    /* The verifier gives up with EAGAIN when a signal is pending (a profiler's SIGPROF, a timer): it is
     * asked again, as libbpf does. */
    int fd, tries = 0;
    do fd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
    while (fd < 0 && errno == EAGAIN && ++tries < 8);
    if (fd >= 0) return make_num(env, fd);
    int err = errno;
    if (err == EPERM || err == ENOSYS) return throw_errno(env, "bpf(BPF_PROG_LOAD)", err);

    /* Again, with the verifier's log (rolling since 6.4: its tail is kept when it is too long). */
    char *log = calloc(1, LOG_SIZE);
    if (!log) return throw_errno(env, "bpf(BPF_PROG_LOAD)", err);
    attr.log_level = 1;
    attr.log_size = LOG_SIZE;
    attr.log_buf = (uint64_t)(uintptr_t)log;
    tries = 0;
    do fd = (int)sys_bpf(BPF_PROG_LOAD, &attr);
    while (fd < 0 && errno == EAGAIN && ++tries < 8);
    if (fd >= 0) { /* refused once, accepted with a log: take it */
        free(log);
        return make_num(env, fd);
    }
    err = errno;
    log[LOG_SIZE - 1] = 0;
    char reason[512], insn[256], line[1024];
    const char *tail = log_tail(log, reason, sizeof reason, insn, sizeof insn);
    if (reason[0] && insn[0])
        snprintf(line, sizeof line, "the BPF verifier refused the program: %s (at %s)", reason, insn);
    else if (reason[0])
        snprintf(line, sizeof line, "the BPF verifier refused the program: %s", reason);
    else
        snprintf(line, sizeof line, "the kernel refused the BPF program: %s", strerror(err));
    throw_error(env, line, err, tail);
    free(log);
    return NULL;
}

/* ---- maps ---- */

static napi_value map_create(napi_env env, napi_callback_info info)
{
    static const char usage[] =
        "mapCreate(type: 'array'|'percpu_array'|'hash'|'percpu_hash'|'ringbuf', keySize, valueSize, maxEntries, name?)";
    napi_value argv[5];
    size_t argc;
    char type[32], name[BPF_OBJ_NAME_LEN] = "";
    int64_t key, value, entries;
    if (!get_args(env, info, 4, 5, argv, &argc, usage) || !get_string(env, argv[0], type, sizeof type, usage) ||
        !get_i64(env, argv[1], &key, usage) || !get_i64(env, argv[2], &value, usage) ||
        !get_i64(env, argv[3], &entries, usage))
        return NULL;
    if (argc == 5 && !get_name(env, argv[4], name, usage)) return NULL;
    if (key < 0 || value < 0 || entries <= 0 || key > UINT32_MAX || value > UINT32_MAX || entries > UINT32_MAX) {
        napi_throw_range_error(env, NULL, usage);
        return NULL;
    }
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    if (strcmp(type, "array") == 0)
        attr.map_type = BPF_MAP_TYPE_ARRAY;
    else if (strcmp(type, "percpu_array") == 0)
        attr.map_type = BPF_MAP_TYPE_PERCPU_ARRAY;
    else if (strcmp(type, "percpu_hash") == 0)
        attr.map_type = BPF_MAP_TYPE_PERCPU_HASH;
    else if (strcmp(type, "hash") == 0)
        attr.map_type = BPF_MAP_TYPE_HASH;
    else if (strcmp(type, "ringbuf") == 0)
        attr.map_type = BPF_MAP_TYPE_RINGBUF;
    else {
        napi_throw_type_error(env, NULL, usage);
        return NULL;
    }
    attr.key_size = (uint32_t)key;
    attr.value_size = (uint32_t)value;
    attr.max_entries = (uint32_t)entries;
    memcpy(attr.map_name, name, sizeof name);
    int fd = (int)sys_bpf(BPF_MAP_CREATE, &attr);
    if (fd < 0) return throw_errno(env, "bpf(BPF_MAP_CREATE)", errno);
    return make_num(env, fd);
}

static int map_info(int fd, struct bpf_map_info *mi)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    memset(mi, 0, sizeof *mi);
    attr.info.bpf_fd = (uint32_t)fd;
    attr.info.info_len = sizeof *mi;
    attr.info.info = (uint64_t)(uintptr_t)mi;
    return (int)sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
}

static int possible_cpus(void)
{
    static int cached;
    if (cached) return cached;
    FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
    if (!f) return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    int count = 0;
    for (char *p = buf; *p && *p != '\n';) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p) return -1;
        if (*end == '-') {
            p = end + 1;
            b = strtol(p, &end, 10);
            if (end == p || b < a) return -1;
        }
        count += (int)(b - a + 1);
        p = *end == ',' ? end + 1 : end;
    }
    cached = count > 0 ? count : -1;
    return cached;
}

static napi_value js_possible_cpus(napi_env env, napi_callback_info info)
{
    (void)info;
    int n = possible_cpus();
    if (n < 0) return throw_errno(env, "/sys/devices/system/cpu/possible", errno ? errno : EINVAL);
    return make_num(env, n);
}

/* The map's key and value sizes (a per-CPU value for every possible CPU), checked against the buffers. */
static int check_sizes(napi_env env, int fd, size_t key_len, size_t value_len, int want_value, const char *what)
{
    struct bpf_map_info mi;
    if (map_info(fd, &mi) < 0) {
        throw_errno(env, what, errno);
        return 0;
    }
    size_t value = mi.value_size;
    int cpus = possible_cpus();
    if (cpus < 0) {
        throw_errno(env, "/sys/devices/system/cpu/possible", EINVAL);
        return 0;
    }
    if (mi.type == BPF_MAP_TYPE_PERCPU_ARRAY || mi.type == BPF_MAP_TYPE_PERCPU_HASH ||
        mi.type == BPF_MAP_TYPE_LRU_PERCPU_HASH)
        value = ((value + 7) & ~(size_t)7) * (size_t)cpus;
    if (key_len != mi.key_size || (want_value && value_len != value)) {
        char line[256];
        snprintf(line, sizeof line, "%s: the map's key is %u bytes and its value %zu bytes; given %zu and %zu", what,
                 mi.key_size, value, key_len, value_len);
        napi_throw_range_error(env, NULL, line);
        return 0;
    }
    return 1;
}

/* The arguments (fd, key: Buffer[, value: Buffer]) of an element call, checked against the map's sizes, as attr. */
static int elem_args(napi_env env, napi_callback_info info, int with_value, const char *usage, union bpf_attr *attr)
{
    napi_value argv[3];
    size_t argc, klen, vlen = 0;
    int fd;
    void *key, *value = NULL;
    size_t n = with_value ? 3 : 2;
    if (!get_args(env, info, n, n, argv, &argc, usage) || !get_fd(env, argv[0], &fd, usage) ||
        !get_bytes(env, argv[1], &key, &klen, usage) || (with_value && !get_bytes(env, argv[2], &value, &vlen, usage)) ||
        !check_sizes(env, fd, klen, vlen, with_value, usage))
        return 0;
    memset(attr, 0, sizeof *attr);
    attr->map_fd = (uint32_t)fd;
    attr->key = (uint64_t)(uintptr_t)key;
    attr->value = (uint64_t)(uintptr_t)value;
    return 1;
}

/* true when done, false when the key is not there (ENOENT), else throws. */
static napi_value elem_result(napi_env env, long ret, const char *what)
{
    if (ret == 0) return make_bool(env, 1);
    if (errno == ENOENT) return make_bool(env, 0);
    return throw_errno(env, what, errno);
}

static napi_value map_lookup(napi_env env, napi_callback_info info)
{
    union bpf_attr attr;
    if (!elem_args(env, info, 1, "mapLookup(fd, key: Buffer, value: Buffer)", &attr)) return NULL;
    return elem_result(env, sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr), "bpf(BPF_MAP_LOOKUP_ELEM)");
}

static napi_value map_update(napi_env env, napi_callback_info info)
{
    union bpf_attr attr;
    if (!elem_args(env, info, 1, "mapUpdate(fd, key: Buffer, value: Buffer)", &attr)) return NULL;
    attr.flags = BPF_ANY;
    if (sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) < 0) return throw_errno(env, "bpf(BPF_MAP_UPDATE_ELEM)", errno);
    return NULL;
}

static napi_value map_delete(napi_env env, napi_callback_info info)
{
    union bpf_attr attr;
    if (!elem_args(env, info, 0, "mapDelete(fd, key: Buffer)", &attr)) return NULL;
    return elem_result(env, sys_bpf(BPF_MAP_DELETE_ELEM, &attr), "bpf(BPF_MAP_DELETE_ELEM)");
}

static napi_value map_next_key(napi_env env, napi_callback_info info)
{
    static const char usage[] = "mapNextKey(fd, key: Buffer | null, next: Buffer)";
    napi_value argv[3];
    size_t argc, klen = 0, nlen;
    int fd;
    void *key = NULL, *next;
    napi_valuetype t;
    if (!get_args(env, info, 3, 3, argv, &argc, usage) || !get_fd(env, argv[0], &fd, usage) ||
        napi_typeof(env, argv[1], &t) != napi_ok)
        return NULL;
    if (t != napi_null && t != napi_undefined && !get_bytes(env, argv[1], &key, &klen, usage)) return NULL;
    if (!get_bytes(env, argv[2], &next, &nlen, usage) || !check_sizes(env, fd, nlen, 0, 0, "mapNextKey")) return NULL;
    if (key && klen != nlen) {
        napi_throw_range_error(env, NULL, "mapNextKey: key and next must be the map's key size");
        return NULL;
    }
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_fd = (uint32_t)fd;
    attr.key = (uint64_t)(uintptr_t)key;
    attr.next_key = (uint64_t)(uintptr_t)next;
    return elem_result(env, sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr), "bpf(BPF_MAP_GET_NEXT_KEY)");
}

/* ---- perf events ---- */

static napi_value perf_clock(napi_env env, napi_callback_info info)
{
    static const char usage[] = "perfClock(tid, freqHz)";
    napi_value argv[2];
    size_t argc;
    int64_t tid, hz;
    if (!get_args(env, info, 2, 2, argv, &argc, usage) || !get_i64(env, argv[0], &tid, usage) ||
        !get_i64(env, argv[1], &hz, usage))
        return NULL;
    if (tid <= 0 || tid > INT32_MAX || hz <= 0) {
        napi_throw_range_error(env, NULL, usage);
        return NULL;
    }
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.freq = 1;
    attr.sample_freq = (uint64_t)hz;
    attr.disabled = 1;
    int fd = (int)syscall(SYS_perf_event_open, &attr, (pid_t)tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) return throw_errno(env, "perf_event_open(cpu-clock)", errno);
    return make_num(env, fd);
}

static int uprobe_pmu_type(void)
{
    FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "re");
    if (!f) return -1;
    int type = -1;
    if (fscanf(f, "%d", &type) != 1) type = -1;
    fclose(f);
    return type;
}

static napi_value perf_uprobe(napi_env env, napi_callback_info info)
{
    static const char usage[] = "perfUprobe(path, fileOffset, pid)";
    napi_value argv[3];
    size_t argc;
    char path[4096];
    int64_t offset, pid;
    if (!get_args(env, info, 3, 3, argv, &argc, usage) || !get_string(env, argv[0], path, sizeof path, usage) ||
        !get_i64(env, argv[1], &offset, usage) || !get_i64(env, argv[2], &pid, usage))
        return NULL;
    if (offset < 0 || pid <= 0 || pid > INT32_MAX) {
        napi_throw_range_error(env, NULL, usage);
        return NULL;
    }
    int type = uprobe_pmu_type();
    if (type < 0) return throw_errno(env, "/sys/bus/event_source/devices/uprobe/type (no uprobe PMU)", ENOENT);
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = (uint32_t)type;
    attr.config1 = (uint64_t)(uintptr_t)path; /* uprobe_path */
    attr.config2 = (uint64_t)offset;          /* probe_offset */
    attr.sample_period = 1;
    attr.wakeup_events = 1;
    attr.disabled = 1;
    /* pid with cpu -1: the breakpoint goes into this process's mm only; others mapping the file are untouched. */
    int fd = (int)syscall(SYS_perf_event_open, &attr, (pid_t)pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) return throw_errno(env, "perf_event_open(uprobe)", errno);
    return make_num(env, fd);
}

static napi_value attach(napi_env env, napi_callback_info info)
{
    static const char usage[] = "attach(perfFd, progFd)";
    napi_value argv[2];
    size_t argc;
    int perf, prog;
    if (!get_args(env, info, 2, 2, argv, &argc, usage) || !get_fd(env, argv[0], &perf, usage) ||
        !get_fd(env, argv[1], &prog, usage))
        return NULL;
    if (ioctl(perf, PERF_EVENT_IOC_SET_BPF, prog) < 0) return throw_errno(env, "ioctl(PERF_EVENT_IOC_SET_BPF)", errno);
    if (ioctl(perf, PERF_EVENT_IOC_ENABLE, 0) < 0) return throw_errno(env, "ioctl(PERF_EVENT_IOC_ENABLE)", errno);
    return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
    static const char usage[] = "close(fd)";
    napi_value argv[1];
    size_t argc;
    int fd;
    if (!get_args(env, info, 1, 1, argv, &argc, usage) || !get_fd(env, argv[0], &fd, usage)) return NULL;
    if (close(fd) < 0) return throw_errno(env, "close", errno);
    return NULL;
}

/* ---- the ring buffer (kernel/bpf/ringbuf.c: a consumer page RW, then the producer page and the data
 * mapped twice, RO, so that a record that wraps reads as one piece) ---- */

struct ringbuf {
    int fd;
    size_t page, size;
    unsigned long *consumer;       /* consumer_pos */
    unsigned long *producer;       /* producer_pos */
    unsigned char *data;
};

static void ringbuf_unmap(struct ringbuf *r)
{
    if (r->consumer) munmap(r->consumer, r->page);
    if (r->producer) munmap(r->producer, r->page + 2 * r->size);
    r->consumer = r->producer = NULL;
    r->data = NULL;
}

static void ringbuf_finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    ringbuf_unmap(data);
    free(data);
}

static struct ringbuf *ringbuf_of(napi_env env, napi_value v)
{
    void *data = NULL;
    if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
        napi_throw_type_error(env, NULL, "xwalk_bpf: not a handle from ringbufOpen()");
        return NULL;
    }
    struct ringbuf *r = data;
    if (!r->data) {
        napi_throw_error(env, NULL, "xwalk_bpf: the ring buffer is closed");
        return NULL;
    }
    return r;
}

static napi_value ringbuf_open(napi_env env, napi_callback_info info)
{
    static const char usage[] = "ringbufOpen(mapFd, size)";
    napi_value argv[2];
    size_t argc;
    int fd;
    int64_t size;
    if (!get_args(env, info, 2, 2, argv, &argc, usage) || !get_fd(env, argv[0], &fd, usage) ||
        !get_i64(env, argv[1], &size, usage))
        return NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size <= 0 || (size & (size - 1)) != 0 || (size_t)size % page != 0) {
        napi_throw_range_error(env, NULL, "ringbufOpen: size is a power of two, a multiple of the page size");
        return NULL;
    }
    struct bpf_map_info mi;
    if (map_info(fd, &mi) < 0) return throw_errno(env, "ringbufOpen", errno);
    if (mi.type != BPF_MAP_TYPE_RINGBUF || mi.max_entries != (uint64_t)size) {
        napi_throw_range_error(env, NULL, "ringbufOpen: not a ring buffer map of that size");
        return NULL;
    }
    struct ringbuf *r = calloc(1, sizeof *r);
    if (!r) return throw_errno(env, "ringbufOpen", ENOMEM);
    r->fd = fd;
    r->page = page;
    r->size = (size_t)size;
    void *c = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (c == MAP_FAILED) {
        free(r);
        return throw_errno(env, "mmap(ring buffer consumer page)", errno);
    }
    r->consumer = c;
    void *p = mmap(NULL, page + 2 * r->size, PROT_READ, MAP_SHARED, fd, (off_t)page);
    if (p == MAP_FAILED) {
        int e = errno;
        ringbuf_unmap(r);
        free(r);
        return throw_errno(env, "mmap(ring buffer data)", e);
    }
    r->producer = p;
    r->data = (unsigned char *)p + page;
    napi_value handle;
    if (napi_create_external(env, r, ringbuf_finalize, NULL, &handle) != napi_ok) {
        ringbuf_finalize(env, r, NULL);
        napi_throw_error(env, NULL, "xwalk_bpf: no external");
        return NULL;
    }
    return handle;
}

static napi_value ringbuf_drain(napi_env env, napi_callback_info info)
{
    static const char usage[] = "ringbufDrain(handle, max)";
    napi_value argv[2];
    size_t argc;
    int64_t max;
    if (!get_args(env, info, 2, 2, argv, &argc, usage) || !get_i64(env, argv[1], &max, usage)) return NULL;
    struct ringbuf *r = ringbuf_of(env, argv[0]);
    if (!r) return NULL;
    napi_value out;
    napi_create_array(env, &out);
    uint32_t n = 0;
    unsigned long cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
    unsigned long prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
    while (cons < prod && (int64_t)n < max) {
        uint32_t *hdr = (uint32_t *)(r->data + (cons & (r->size - 1)));
        uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
        if (len & BPF_RINGBUF_BUSY_BIT) break; /* still being written */
        uint32_t body = len & ~(uint32_t)(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
        if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
            napi_value buf;
            void *dst;
            if (napi_create_buffer_copy(env, body, (unsigned char *)hdr + BPF_RINGBUF_HDR_SZ, &dst, &buf) != napi_ok)
                break;
            napi_set_element(env, out, n++, buf);
        }
        cons += (BPF_RINGBUF_HDR_SZ + body + 7) & ~7ul;
        __atomic_store_n(r->consumer, cons, __ATOMIC_RELEASE);
    }
    return out;
}

static napi_value ringbuf_wait(napi_env env, napi_callback_info info)
{
    static const char usage[] = "ringbufWait(handle, ms)";
    napi_value argv[2];
    size_t argc;
    int64_t ms;
    if (!get_args(env, info, 2, 2, argv, &argc, usage) || !get_i64(env, argv[1], &ms, usage)) return NULL;
    struct ringbuf *r = ringbuf_of(env, argv[0]);
    if (!r) return NULL;
    if (__atomic_load_n(r->consumer, __ATOMIC_ACQUIRE) < __atomic_load_n(r->producer, __ATOMIC_ACQUIRE))
        return make_bool(env, 1);
    struct pollfd p = { .fd = r->fd, .events = POLLIN };
    int got = poll(&p, 1, ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms);
    if (got < 0 && errno != EINTR) return throw_errno(env, "poll(ring buffer)", errno);
    return make_bool(env, __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE) <
                              __atomic_load_n(r->producer, __ATOMIC_ACQUIRE));
}

static napi_value ringbuf_close(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    size_t argc;
    if (!get_args(env, info, 1, 1, argv, &argc, "ringbufClose(handle)")) return NULL;
    void *data = NULL;
    if (napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
        napi_throw_type_error(env, NULL, "xwalk_bpf: not a handle from ringbufOpen()");
        return NULL;
    }
    ringbuf_unmap(data);
    return NULL;
}

/* ---- costs ---- */

static napi_value enable_stats(napi_env env, napi_callback_info info)
{
    (void)info;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.enable_stats.type = BPF_STATS_RUN_TIME;
    int fd = (int)sys_bpf(BPF_ENABLE_STATS, &attr);
    if (fd < 0) return throw_errno(env, "bpf(BPF_ENABLE_STATS)", errno);
    return make_num(env, fd);
}

static napi_value prog_info(napi_env env, napi_callback_info info)
{
    static const char usage[] = "progInfo(fd)";
    napi_value argv[1];
    size_t argc;
    int fd;
    if (!get_args(env, info, 1, 1, argv, &argc, usage) || !get_fd(env, argv[0], &fd, usage)) return NULL;
    struct bpf_prog_info pi;
    memset(&pi, 0, sizeof pi);
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.info.bpf_fd = (uint32_t)fd;
    attr.info.info_len = sizeof pi;
    attr.info.info = (uint64_t)(uintptr_t)&pi;
    if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) return throw_errno(env, "bpf(BPF_OBJ_GET_INFO_BY_FD)", errno);
    napi_value out;
    napi_create_object(env, &out);
    napi_set_named_property(env, out, "id", make_num(env, pi.id));
    napi_set_named_property(env, out, "runCount", make_num(env, (double)pi.run_cnt));
    napi_set_named_property(env, out, "runTimeNs", make_num(env, (double)pi.run_time_ns));
    napi_set_named_property(env, out, "jitedLen", make_num(env, pi.jited_prog_len));
    napi_set_named_property(env, out, "xlatedLen", make_num(env, pi.xlated_prog_len));
    napi_set_named_property(env, out, "verifiedInsns", make_num(env, pi.verified_insns));
    return out;
}

static napi_value prog_ids(napi_env env, napi_callback_info info)
{
    (void)info;
    napi_value out;
    napi_create_array(env, &out);
    union bpf_attr attr;
    uint32_t id = 0, n = 0;
    for (;;) {
        memset(&attr, 0, sizeof attr);
        attr.start_id = id;
        if (sys_bpf(BPF_PROG_GET_NEXT_ID, &attr) < 0) {
            if (errno == ENOENT) break;
            return throw_errno(env, "bpf(BPF_PROG_GET_NEXT_ID)", errno);
        }
        id = attr.next_id;
        napi_set_element(env, out, n++, make_num(env, id));
    }
    return out;
}

static napi_value init(napi_env env, napi_value exports)
{
    static const struct export_fn fns[] = {
        { "progLoad", prog_load },         { "mapCreate", map_create },       { "mapLookup", map_lookup },
        { "mapUpdate", map_update },       { "mapDelete", map_delete },       { "mapNextKey", map_next_key },
        { "possibleCpus", js_possible_cpus }, { "perfClock", perf_clock },    { "perfUprobe", perf_uprobe },
        { "attach", attach },              { "close", js_close },             { "ringbufOpen", ringbuf_open },
        { "ringbufDrain", ringbuf_drain }, { "ringbufWait", ringbuf_wait },   { "ringbufClose", ringbuf_close },
        { "enableStats", enable_stats },   { "progInfo", prog_info },         { "progIds", prog_ids },
    };
    return export_functions(env, exports, fns, sizeof fns / sizeof fns[0]);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
