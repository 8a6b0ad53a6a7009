#include <criterion/criterion.h>
#include <stdint.h>

#include "core/alloc.h"

Test(alloc, overflowing_sizes_fail_cleanly)
{
    cr_assert_eq(gf_mul_size(SIZE_MAX / 2, 3), SIZE_MAX);
    cr_assert_null(gf_calloc(SIZE_MAX / 2, 3));
    cr_assert_null(gf_malloc(SIZE_MAX));
    cr_assert_eq(gf_mul_size(7, 9), 63u);
}

Test(alloc, failure_injection_counts_and_fails)
{
    gf_alloc_fail_after(-1);
    void *a = gf_malloc(8), *b = gf_malloc(8);
    cr_assert_geq(gf_alloc_fail_after(1), 2);
    void *c = gf_malloc(8); /* the one allowed */
    void *d = gf_malloc(8); /* fails */
    cr_assert_not_null(c);
    cr_assert_null(d);
    gf_alloc_fail_after(-1);
    void *e = gf_malloc(8);
    cr_assert_not_null(e);
    gf_free(a); gf_free(b); gf_free(c); gf_free(e);
}

Test(alloc, aligned)
{
    void *p = gf_alloc_aligned(100);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 64, 0);
    gf_free_aligned(p);
}
