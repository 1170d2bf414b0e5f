/*
 * xwalk_pvr: process_vm_readv for Node, and the two system calls of the
 * check that the process read is still the one opened.
 *
 * readv(pid, addrs: Float64Array, lens: Uint32Array, out: Buffer, calls?: Float64Array) -> number
 *   Reads the remote ranges (addrs[i], lens[i]) into `out`, packed back to
 *   back, with one syscall per IOV_MAX ranges, and adds to calls[0] how many
 *   it made (a caller's count of its reads is then true). Returns the number of bytes
 *   read: process_vm_readv never splits an iovec element, so the caller
 *   knows which ranges arrived whole. Returns -errno when nothing could be
 *   read (ESRCH: no such process, EPERM: not allowed, EFAULT: unmapped).
 *
 * identity(fd, buf: Buffer, exe: string, out: Float64Array) -> number
 *   pread(fd, buf) from offset 0 (the held /proc/PID/stat), and stat(exe)
 *   (/proc/PID/exe) into out[0] = st_dev, out[1] = st_ino, or out[0] =
 *   -errno when that fails. Returns the bytes read, or -errno. In one call:
 *   through node's fs the two cost several times their system calls.
 *
 * alive(fd, addr) -> number
 *   pread of one byte at addr from fd, a /proc/PID/mem held since the
 *   process was opened: 1 while the memory it opened is the process's, 0
 *   once the process exited or called exec (the file holds the address
 *   space of its open; a new program has another), -errno when the byte
 *   cannot be read.
 *
 * slab(bytes) -> ArrayBuffer (slab.c): memory for what is read, in huge pages.
 *
 * This never stops the target: process_vm_readv needs only the ptrace
 * *access* check (same uid or CAP_SYS_PTRACE), not an attach.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "slab.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define CHECK(call)                                                        \
    do {                                                                   \
        if ((call) != napi_ok) {                                           \
            napi_throw_error(env, NULL, "xwalk_pvr: bad arguments");       \
            return NULL;                                                   \
        }                                                                  \
    } while (0)

static napi_value make_int(napi_env env, int64_t v)
{
    napi_value out;
    napi_create_int64(env, v, &out);
    return out;
}

/* The call's arguments into argv (room for max): between min and max of them, else a TypeError naming the usage. */
static int get_args(napi_env env, napi_callback_info info, napi_value *argv, size_t min, size_t max, size_t *argc, const char *usage)
{
    *argc = max;
    if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok || *argc < min || *argc > max) {
        napi_throw_type_error(env, NULL, usage);
        return -1;
    }
    return 0;
}

static napi_value pvr_readv(napi_env env, napi_callback_info info)
{
    size_t argc;
    napi_value argv[5];
    if (get_args(env, info, argv, 4, 5, &argc, "readv(pid, addrs, lens, out, calls?)") < 0)
        return NULL;

    int32_t pid;
    CHECK(napi_get_value_int32(env, argv[0], &pid));

    napi_typedarray_type atype, ltype;
    size_t n_addrs, n_lens;
    void *addrs_data, *lens_data;
    CHECK(napi_get_typedarray_info(env, argv[1], &atype, &n_addrs, &addrs_data, NULL, NULL));
    CHECK(napi_get_typedarray_info(env, argv[2], &ltype, &n_lens, &lens_data, NULL, NULL));
    if (atype != napi_float64_array || ltype != napi_uint32_array || n_addrs != n_lens) {
        napi_throw_type_error(env, NULL, "readv: addrs must be a Float64Array, lens a Uint32Array of the same length");
        return NULL;
    }

    void *out;
    size_t out_len;
    CHECK(napi_get_buffer_info(env, argv[3], &out, &out_len));
    double *calls = NULL;
    if (argc == 5) {
        napi_typedarray_type ctype;
        size_t n_calls;
        void *calls_data;
        CHECK(napi_get_typedarray_info(env, argv[4], &ctype, &n_calls, &calls_data, NULL, NULL));
        if (ctype != napi_float64_array || n_calls < 1) {
            napi_throw_type_error(env, NULL, "readv: calls must be a Float64Array of at least one element");
            return NULL;
        }
        calls = calls_data;
    }

    const double *addrs = addrs_data;
    const uint32_t *lens = lens_data;
    size_t want = 0;
    for (size_t i = 0; i < n_lens; i++)
        want += lens[i];
    if (want > out_len) {
        napi_throw_range_error(env, NULL, "readv: out is smaller than the sum of lens");
        return NULL;
    }

    struct iovec local[IOV_MAX], remote[IOV_MAX];
    size_t total = 0;
    char *dst = out;
    for (size_t first = 0; first < n_lens; first += IOV_MAX) {
        size_t count = n_lens - first < IOV_MAX ? n_lens - first : IOV_MAX;
        size_t batch = 0;
        for (size_t i = 0; i < count; i++) {
            local[i].iov_base = dst + batch;
            local[i].iov_len = lens[first + i];
            remote[i].iov_base = (void *)(uintptr_t)addrs[first + i];
            remote[i].iov_len = lens[first + i];
            batch += lens[first + i];
        }
        ssize_t got = process_vm_readv(pid, local, count, remote, count, 0);
        if (calls)
            calls[0] += 1;
        if (got < 0)
            return make_int(env, total > 0 ? (int64_t)total : -(int64_t)errno);
        total += (size_t)got;
        if ((size_t)got < batch)
            break;
        dst += batch;
    }
    return make_int(env, (int64_t)total);
}

static napi_value pvr_identity(napi_env env, napi_callback_info info)
{
    size_t argc;
    napi_value argv[4];
    if (get_args(env, info, argv, 4, 4, &argc, "identity(fd, buf, exe, out)") < 0)
        return NULL;
    int32_t fd;
    CHECK(napi_get_value_int32(env, argv[0], &fd));
    void *buf;
    size_t buf_len;
    CHECK(napi_get_buffer_info(env, argv[1], &buf, &buf_len));
    char exe[PATH_MAX];
    size_t exe_len;
    CHECK(napi_get_value_string_utf8(env, argv[2], exe, sizeof exe, &exe_len));
    napi_typedarray_type otype;
    size_t n_out;
    void *out_data;
    CHECK(napi_get_typedarray_info(env, argv[3], &otype, &n_out, &out_data, NULL, NULL));
    if (otype != napi_float64_array || n_out < 2) {
        napi_throw_type_error(env, NULL, "identity: out must be a Float64Array of 2");
        return NULL;
    }
    double *out = out_data;

    ssize_t got = pread(fd, buf, buf_len, 0);
    if (got < 0)
        return make_int(env, -(int64_t)errno);
    struct stat st;
    if (stat(exe, &st) == 0) {
        out[0] = (double)st.st_dev;
        out[1] = (double)st.st_ino;
    } else {
        out[0] = -(double)errno;
        out[1] = 0;
    }
    return make_int(env, (int64_t)got);
}

static napi_value pvr_alive(napi_env env, napi_callback_info info)
{
    size_t argc;
    napi_value argv[2];
    if (get_args(env, info, argv, 2, 2, &argc, "alive(fd, addr)") < 0)
        return NULL;
    int32_t fd;
    double addr;
    CHECK(napi_get_value_int32(env, argv[0], &fd));
    CHECK(napi_get_value_double(env, argv[1], &addr));
    if (!(addr >= 0 && addr < 9007199254740992.0)) {
        napi_throw_range_error(env, NULL, "alive: addr must be an address below 2^53");
        return NULL;
    }
    char byte;
    ssize_t got = pread(fd, &byte, 1, (off_t)addr);
    return make_int(env, got < 0 ? -(int64_t)errno : (int64_t)got);
}

static napi_value init(napi_env env, napi_value exports)
{
    napi_value fn;
    napi_create_function(env, "readv", NAPI_AUTO_LENGTH, pvr_readv, NULL, &fn);
    napi_set_named_property(env, exports, "readv", fn);
    napi_create_function(env, "identity", NAPI_AUTO_LENGTH, pvr_identity, NULL, &fn);
    napi_set_named_property(env, exports, "identity", fn);
    napi_create_function(env, "alive", NAPI_AUTO_LENGTH, pvr_alive, NULL, &fn);
    napi_set_named_property(env, exports, "alive", fn);
    slab_register(env, exports);
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
