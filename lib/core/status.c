/* status.c — status names, the thread-local last error, and the log sink. */
#include "status.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define GF_ERROR_CAP 1024

static _Thread_local char tls_error[GF_ERROR_CAP];

GEMFA_API unsigned gemfa_version_number(void) { return GEMFA_VERSION_NUMBER; }
GEMFA_API const char *gemfa_version_string(void) { return GEMFA_VERSION_STRING; }

GEMFA_API const char *gemfa_status_name(gemfa_status status)
{
    switch (status) {
    case GEMFA_OK: return "GEMFA_OK";
    case GEMFA_ERR_INVALID_ARGUMENT: return "GEMFA_ERR_INVALID_ARGUMENT";
    case GEMFA_ERR_OUT_OF_MEMORY: return "GEMFA_ERR_OUT_OF_MEMORY";
    case GEMFA_ERR_IO: return "GEMFA_ERR_IO";
    case GEMFA_ERR_FORMAT: return "GEMFA_ERR_FORMAT";
    case GEMFA_ERR_CONFIG: return "GEMFA_ERR_CONFIG";
    case GEMFA_ERR_TENSOR_MISSING: return "GEMFA_ERR_TENSOR_MISSING";
    case GEMFA_ERR_TENSOR_SHAPE: return "GEMFA_ERR_TENSOR_SHAPE";
    case GEMFA_ERR_UNSUPPORTED: return "GEMFA_ERR_UNSUPPORTED";
    case GEMFA_ERR_NO_TOKENIZER: return "GEMFA_ERR_NO_TOKENIZER";
    case GEMFA_ERR_NO_WEIGHTS: return "GEMFA_ERR_NO_WEIGHTS";
    case GEMFA_ERR_INVALID_UTF8: return "GEMFA_ERR_INVALID_UTF8";
    case GEMFA_ERR_INVALID_TOKEN: return "GEMFA_ERR_INVALID_TOKEN";
    case GEMFA_ERR_TEMPLATE: return "GEMFA_ERR_TEMPLATE";
    case GEMFA_ERR_BUFFER_TOO_SMALL: return "GEMFA_ERR_BUFFER_TOO_SMALL";
    case GEMFA_ERR_CONTEXT_FULL: return "GEMFA_ERR_CONTEXT_FULL";
    case GEMFA_ERR_CANCELLED: return "GEMFA_ERR_CANCELLED";
    case GEMFA_ERR_INTERNAL: return "GEMFA_ERR_INTERNAL";
    case GEMFA_ERR_NOT_FOUND: return "GEMFA_ERR_NOT_FOUND";
    case GEMFA_ERR_MODEL_MISMATCH: return "GEMFA_ERR_MODEL_MISMATCH";
    }
    return "GEMFA_ERR_UNKNOWN";
}

GEMFA_API const char *gemfa_last_error(void) { return tls_error; }

gemfa_status gf_errno_status(int err)
{
    return err == ENOENT || err == ENOTDIR ? GEMFA_ERR_NOT_FOUND : GEMFA_ERR_IO;
}

void gf_error_clear(void) { tls_error[0] = '\0'; }

gemfa_status gf_error(gemfa_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_error, sizeof tls_error, fmt, ap);
    va_end(ap);
    return status;
}

gemfa_status gf_error_prefix(gemfa_status status, const char *fmt, ...)
{
    char old[GF_ERROR_CAP];
    memcpy(old, tls_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tls_error, sizeof tls_error, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof tls_error) {
        memcpy(tls_error + n, ": ", 2);
        size_t room = sizeof tls_error - (size_t)n - 2;
        size_t len = strnlen(old, room - 1);
        memcpy(tls_error + n + 2, old, len);
        tls_error[n + 2 + len] = '\0';
    }
    return status;
}

/* The log sink is process-wide; a mutex keeps (fn, user, level) consistent. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static gemfa_log_fn log_fn;
static void *log_user;
static gemfa_log_level log_max = GEMFA_LOG_WARN;
static int log_custom;

GEMFA_API void gemfa_set_log_callback(gemfa_log_fn fn, void *user, gemfa_log_level max_level)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_user = user;
    log_max = max_level;
    log_custom = 1;
    pthread_mutex_unlock(&log_lock);
}

void gf_log(gemfa_log_level level, const char *fmt, ...)
{
    pthread_mutex_lock(&log_lock);
    gemfa_log_fn fn = log_fn;
    void *user = log_user;
    int custom = log_custom, wanted = level <= log_max;
    pthread_mutex_unlock(&log_lock);
    if (!wanted || (custom && !fn))
        return;

    char msg[GF_ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (fn) {
        fn(user, level, msg);
    } else {
        static const char *names[] = {"error", "warning", "info", "debug"};
        fprintf(stderr, "libgemfa %s: %s\n", names[level & 3], msg);
    }
}
