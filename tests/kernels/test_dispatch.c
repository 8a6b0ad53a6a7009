/* test_dispatch.c — the level in use is the CPU's best, lowered (never
 * raised) by GEMFA_KERNEL_LEVEL; meson runs this binary once per level. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/linear.h"

Test(dispatch, level_follows_environment)
{
    gf_kernel_level want = gf_kernel_level_detected();
    const char *env = getenv("GEMFA_KERNEL_LEVEL");
    if (env) /* a name of this architecture's levels (others are ignored) */
        for (int l = 0; l < GF_LEVEL_COUNT; l++)
            if (!strcmp(env, gf_kernel_level_name((gf_kernel_level)l)) && (gf_kernel_level)l < want)
                want = (gf_kernel_level)l;
    cr_assert_eq(gf_kernels()->level, want, "in use %s, expected %s", gf_kernels()->name,
                 gf_kernel_level_name(want));
    cr_assert_str_eq(gf_kernel_level_in_use(), gf_kernel_level_name(want));
    for (int l = 0; l <= (int)gf_kernel_level_detected(); l++)
        cr_assert_not_null(gf_kernels_for_level((gf_kernel_level)l));
    for (int l = (int)gf_kernel_level_detected() + 1; l < GF_LEVEL_COUNT; l++) {
        cr_assert_null(gf_kernels_for_level((gf_kernel_level)l));
        cr_assert_eq(gf_kernel_level_force((gf_kernel_level)l), -1);
    }
}

Test(dispatch, every_table_is_complete)
{
    for (int l = 0; l <= (int)gf_kernel_level_detected(); l++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)l);
        for (int dt = 0; dt < 4; dt++)
            cr_assert_not_null(k->rows[dt], "%s dtype %d", k->name, dt);
        cr_assert_not_null(k->quantize_q8);
        cr_assert_not_null(k->widen_row);
        cr_assert_not_null(k->quantize_weights_q8);
        cr_assert_eq((int)k->level, l);
    }
}

/* The aarch64 pass (tests/run_aarch64.sh) names the level the emulated CPU
 * model must be detected at (QEMU_CPU=max: dotprod; cortex-a72: neon), so a
 * broken HWCAP check cannot silently test only the lower level. */
Test(dispatch, detected_level_is_the_expected_one)
{
    const char *want = getenv("GEMFA_EXPECT_DETECTED_LEVEL");
    if (want && *want)
        cr_assert_str_eq(gf_kernel_level_name(gf_kernel_level_detected()), want);
}

/* The batch path by level (linear_batch.c): on aarch64 with SDOT or SMMLA,
 * int8 prompt batches stay on the row kernels at every length; plain NEON
 * and scalar keep the OpenBLAS crossover; f32 is never affected. */
Test(dispatch, int8_batch_path_by_level)
{
    const gf_kernel_level saved = gf_kernels()->level;
    for (int l = 0; l < GF_LEVEL_COUNT; l++) {
        if (gf_kernel_level_force((gf_kernel_level)l) != 0)
            continue;
        const int64_t q8 = gf_gemm_min_tokens(GF_DTYPE_Q8);
#if defined(__aarch64__) && !defined(GF_SIMD_DISABLED)
        if (l >= GF_LEVEL_DOTPROD)
            cr_expect_eq(q8, INT32_MAX, "%s: int8 batches on the row kernels",
                         gf_kernel_level_name((gf_kernel_level)l));
        else
            cr_expect_lt(q8, INT32_MAX, "%s", gf_kernel_level_name((gf_kernel_level)l));
#else
        cr_expect_lt(q8, INT32_MAX, "%s", gf_kernel_level_name((gf_kernel_level)l));
#endif
        cr_expect_lt(gf_gemm_min_tokens(GF_DTYPE_F32), INT32_MAX);
    }
    gf_kernel_level_force(saved);
}
