/* rel_criterion.h — Criterion, or (with -DREL_MINI_CRITERION) a minimal
 * in-process stand-in for the few Criterion macros the concurrency test
 * and the thread-pool test use.  Why: Criterion cannot start under ThreadSanitizer (its
 * inheritable arena mmap fails: Snaipe/Criterion#274), and the TSan run
 * needs this test.  The stand-in runs tests in order in one process and
 * prints TAP like Criterion's --tap.  The aarch64 pass (tests/run_aarch64.sh,
 * meson option mini_criterion) builds its Criterion suites on it too:
 * Criterion cannot be installed for arm64 next to the x86 one, and
 * tests/mini_criterion/criterion/criterion.h points here. */
#ifndef REL_CRITERION_H
#define REL_CRITERION_H

#ifndef REL_MINI_CRITERION
#include <criterion/criterion.h>
#else

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mc_suite {
    void (*init)(void);
    void (*fini)(void);
    double timeout;
};
struct mc_test {
    const char *suite, *name;
    void (*fn)(void);
    const struct mc_suite *opts;
    struct mc_test *next;
};

extern struct mc_test *mc_tests;
extern int mc_failed;
extern jmp_buf mc_abort;

void mc_check(int ok, int fatal, const char *expr, const char *file, int line,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A suite without TestSuite has no options: the weak reference is NULL. */
#define TestSuite(suite, ...) const struct mc_suite mc_suite_##suite = {__VA_ARGS__}
#define Test(suite, name, ...)                                                        \
    static void mc_fn_##suite##_##name(void);                                          \
    extern const struct mc_suite mc_suite_##suite __attribute__((weak));               \
    __attribute__((constructor)) static void mc_reg_##suite##_##name(void)             \
    {                                                                                   \
        static struct mc_test t = {#suite, #name, mc_fn_##suite##_##name,              \
                                   &mc_suite_##suite, NULL};                            \
        struct mc_test **at = &mc_tests;                                                \
        while (*at)                                                                     \
            at = &(*at)->next;                                                          \
        *at = &t;                                                                       \
    }                                                                                   \
    static void mc_fn_##suite##_##name(void)

#define cr_assert(cond, ...) mc_check(!!(cond), 1, #cond, __FILE__, __LINE__, " " __VA_ARGS__)
#define cr_expect(cond, ...) mc_check(!!(cond), 0, #cond, __FILE__, __LINE__, " " __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_expect_eq(a, b, ...) cr_expect((a) == (b), __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_null(p, ...) cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_fail(...) cr_assert(0, __VA_ARGS__)
#define cr_expect_fail(...) cr_expect(0, __VA_ARGS__)
#define cr_assert_not(c, ...) cr_assert(!(c), __VA_ARGS__)
#define cr_expect_not(c, ...) cr_expect(!(c), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_expect_neq(a, b, ...) cr_expect((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_expect_lt(a, b, ...) cr_expect((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_expect_leq(a, b, ...) cr_expect((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_expect_gt(a, b, ...) cr_expect((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_expect_geq(a, b, ...) cr_expect((a) >= (b), __VA_ARGS__)
#define cr_expect_null(p, ...) cr_expect((p) == NULL, __VA_ARGS__)
#define cr_expect_not_null(p, ...) cr_expect((p) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) cr_expect(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) cr_assert(strcmp((a), (b)) != 0, __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...) cr_assert(memcmp((a), (b), (n)) == 0, __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...) cr_assert(fabs((double)(a) - (double)(b)) <= (eps), __VA_ARGS__)
#define cr_expect_float_eq(a, b, eps, ...) cr_expect(fabs((double)(a) - (double)(b)) <= (eps), __VA_ARGS__)
#define cr_log_info(...) (fprintf(stderr, __VA_ARGS__), (void)fputc('\n', stderr))
/* Leaves the test without failing it (Criterion reports a skip). */
#define cr_skip_test(...) (cr_log_info(__VA_ARGS__), longjmp(mc_abort, 1))

#endif
#endif
