/* What every xwalk addon does with N-API the same way: numbers out, errors thrown, arguments in, exports. */
#ifndef XWALK_NAPI_H
#define XWALK_NAPI_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

static inline napi_value make_num(napi_env env, double v)
{
    napi_value out;
    napi_create_double(env, v, &out);
    return out;
}

static inline napi_value make_bool(napi_env env, int v)
{
    napi_value out;
    napi_get_boolean(env, v != 0, &out);
    return out;
}

/* Throws an Error with `message`, .errno and, when log is not NULL, .log. */
static inline void throw_error(napi_env env, const char *message, int err, const char *log)
{
    napi_value msg, error, v;
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &error);
    napi_create_int32(env, err, &v);
    napi_set_named_property(env, error, "errno", v);
    if (log) {
        napi_create_string_utf8(env, log, NAPI_AUTO_LENGTH, &v);
        napi_set_named_property(env, error, "log", v);
    }
    napi_throw(env, error);
}

/* The call's arguments, at least want_min of want_max (the missing ones undefined; *argc, if asked, how many
 * were given), else a TypeError with the usage line. */
static inline int get_args(napi_env env, napi_callback_info info, size_t want_min, size_t want_max, napi_value *argv,
                           size_t *argc, const char *usage)
{
    size_t n = want_max;
    if (napi_get_cb_info(env, info, &n, argv, NULL, NULL) != napi_ok || n < want_min) {
        napi_throw_type_error(env, NULL, usage);
        return 0;
    }
    for (size_t i = n; i < want_max; i++) napi_get_undefined(env, &argv[i]);
    if (argc) *argc = n;
    return 1;
}

static inline int get_i64(napi_env env, napi_value v, int64_t *out, const char *usage)
{
    if (napi_get_value_int64(env, v, out) != napi_ok) {
        napi_throw_type_error(env, NULL, usage);
        return 0;
    }
    return 1;
}

struct export_fn {
    const char *name;
    napi_callback fn;
};

static inline napi_value export_functions(napi_env env, napi_value exports, const struct export_fn *fns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        napi_value fn;
        napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
        napi_set_named_property(env, exports, fns[i].name, fn);
    }
    return exports;
}

#endif
