/* sanitizer_canary.c — tests that must FAIL under the sanitizer builds.
 * tests/run_sanitizers.sh runs each (--filter) through sanitizer_check.sh
 * and expects a failure: proof that a leak inside a forked Criterion test,
 * or undefined behaviour, fails the run.  Not a meson test. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

Test(canary, leak)
{
    char *p = malloc(64);
    cr_assert_not_null(p);
    memset(p, 1, 64);
    sink = p;
    sink = NULL; /* the only pointer is gone: a definite leak at exit */
}

Test(canary, signed_overflow)
{
    volatile int big = INT_MAX;
    sink = (void *)(long)(big + 1);
}
