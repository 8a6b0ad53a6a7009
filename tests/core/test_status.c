#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "gemfa.h"

Test(status, names_are_stable_and_unique)
{
    cr_assert_str_eq(gemfa_status_name(GEMFA_OK), "GEMFA_OK");
    cr_assert_str_eq(gemfa_status_name(GEMFA_ERR_CONTEXT_FULL), "GEMFA_ERR_CONTEXT_FULL");
    cr_assert_str_eq(gemfa_status_name((gemfa_status)999), "GEMFA_ERR_UNKNOWN");
    cr_assert_str_eq(gemfa_status_name(GEMFA_ERR_NOT_FOUND), "GEMFA_ERR_NOT_FOUND");
    cr_assert_eq(GEMFA_ERR_NOT_FOUND, 18, "appended after INTERNAL; values never change");
    for (int a = 0; a <= GEMFA_ERR_NOT_FOUND; a++) {
        cr_assert_str_neq(gemfa_status_name((gemfa_status)a), "GEMFA_ERR_UNKNOWN", "%d", a);
        for (int b = a + 1; b <= GEMFA_ERR_NOT_FOUND; b++)
            cr_assert_str_neq(gemfa_status_name((gemfa_status)a), gemfa_status_name((gemfa_status)b));
    }
}

Test(status, errno_maps_missing_paths_to_not_found)
{
    cr_assert_eq(gf_errno_status(ENOENT), GEMFA_ERR_NOT_FOUND);
    cr_assert_eq(gf_errno_status(ENOTDIR), GEMFA_ERR_NOT_FOUND);
    cr_assert_eq(gf_errno_status(EACCES), GEMFA_ERR_IO);
    cr_assert_eq(gf_errno_status(ELOOP), GEMFA_ERR_IO);
    cr_assert_eq(gf_errno_status(EIO), GEMFA_ERR_IO);
}

Test(status, version_matches_header)
{
    cr_assert_eq(gemfa_version_number(), GEMFA_VERSION_NUMBER);
    cr_assert_str_eq(gemfa_version_string(), GEMFA_VERSION_STRING);
}

Test(status, error_message_and_prefix)
{
    gemfa_status st = gf_error(GEMFA_ERR_IO, "cannot open %s", "x.bin");
    cr_assert_eq(st, GEMFA_ERR_IO);
    cr_assert_str_eq(gemfa_last_error(), "cannot open x.bin");
    gf_error_prefix(GEMFA_ERR_IO, "shard %d", 2);
    cr_assert_str_eq(gemfa_last_error(), "shard 2: cannot open x.bin");
    gf_error_clear();
    cr_assert_str_eq(gemfa_last_error(), "");
}

static void *other_thread(void *arg)
{
    (void)arg;
    /* a new thread starts with an empty message and its own storage */
    int empty = gemfa_last_error()[0] == '\0';
    gf_error(GEMFA_ERR_FORMAT, "thread message");
    return (void *)(long)empty;
}

Test(status, last_error_is_thread_local)
{
    gf_error(GEMFA_ERR_IO, "main message");
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, &ret);
    cr_assert_eq((long)ret, 1);
    cr_assert_str_eq(gemfa_last_error(), "main message");
}

static int log_calls;
static char log_last[256];
static void capture(void *user, gemfa_log_level level, const char *msg)
{
    (void)level;
    *(int *)user += 1;
    snprintf(log_last, sizeof log_last, "%s", msg);
}

Test(status, log_callback_filters_by_level)
{
    gemfa_set_log_callback(capture, &log_calls, GEMFA_LOG_WARN);
    gf_log(GEMFA_LOG_WARN, "w %d", 1);
    gf_log(GEMFA_LOG_DEBUG, "dropped");
    cr_assert_eq(log_calls, 1);
    cr_assert_str_eq(log_last, "w 1");
    gemfa_set_log_callback(NULL, NULL, GEMFA_LOG_DEBUG); /* silence */
    gf_log(GEMFA_LOG_ERROR, "silenced");
    cr_assert_eq(log_calls, 1);
}
