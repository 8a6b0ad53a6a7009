/* status.h — setting the thread-local error message and logging. */
#ifndef GF_STATUS_H
#define GF_STATUS_H

#include "gemfa.h"

#if defined(__GNUC__)
#define GF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GF_PRINTF(a, b)
#endif

/* Records `fmt` as this thread's last error and returns `status`, so that
 * error paths read `return gf_error(GEMFA_ERR_IO, "...", ...);`. */
gemfa_status gf_error(gemfa_status status, const char *fmt, ...) GF_PRINTF(2, 3);

/* Prefixes the current error message with "<prefix>: " (context added by a
 * caller, e.g. the file name) and returns `status`. */
gemfa_status gf_error_prefix(gemfa_status status, const char *fmt, ...) GF_PRINTF(2, 3);

/* The status of a failed open/stat/opendir: NOT_FOUND when errno `err`
 * says the path is not there (ENOENT, ENOTDIR), IO otherwise. */
gemfa_status gf_errno_status(int err);

/* Clears the thread's last error (called at the start of public calls). */
void gf_error_clear(void);

void gf_log(gemfa_log_level level, const char *fmt, ...) GF_PRINTF(2, 3);

#endif
