/* test_amx.c — the AMX-INT8 prompt GEMM (kernels/gemm_amx.c) against its
 * scalar twins (kernels_scalar.c rows_q8 / rows_q4: exact block sums, then
 * fmaf(isum, d_w * d_x, acc) block after block) and the AVX-512 VNNI GEMM,
 * bit for bit, for Q8 and Q4 weights: rows not multiples of 16 (short last
 * groups, odd group counts), every token count 1..70 on one shape (token
 * tiles of 16, pairs of them), more than one 256-token slice, k of 32 and
 * of odd multiples of 32, several matrices at once, an output large enough
 * for streaming stores, 1-2 threads.  Skips
 * where the CPU lacks AMX-INT8 or the OS does not grant it. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernel_util.h"
#include "kernels/gemm.h"
#include "kernels/linear_batch.h"

#define N_ELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void require_amx(void)
{
    if (!gf_gemm_available(GF_GEMM_Q8_AMX))
        cr_skip_test("no AMX-INT8 tiles for this process (AMX %s, kernel level %s)",
                     gf_linear_amx_status(), gf_kernels()->name);
}

/* y through gf_linear_multi with the GEMM forced (AMX on or off), and the
 * scalar row kernel on the scalar quantizer's activations. */
static void check(gf_threadpool *pool, gf_dtype dt, int n_mats, const int64_t *R, int64_t C,
                  int64_t T)
{
    const gf_kernel_table *ref = gf_kernels_for_level(GF_LEVEL_SCALAR);
    float *x = malloc((size_t)(T * C) * 4);
    for (int64_t i = 0; i < T * C; i++) /* blocks of different magnitudes */
        x[i] = test_randf() * (float)(1 + (i / 32) % 5);
    test_matrix tm[3];
    const gf_matrix *W[3];
    float *y[3], *yv[3], *y0[3];
    gf_act act;
    test_q8_act_init(ref, x, T, C, &act);
    for (int m = 0; m < n_mats; m++) {
        float *src = malloc((size_t)(R[m] * C) * 4);
        for (int64_t i = 0; i < R[m] * C; i++)
            src[i] = test_randf() * (float)(1 + (i / 64) % 3);
        test_matrix_init(&tm[m], dt, R[m], C, src);
        free(src);
        W[m] = &tm[m].m;
        /* 64-byte aligned, as the runtime's buffers: streamed lines */
        y[m] = aligned_alloc(64, ((size_t)(T * R[m]) * 4 + 63) & ~(size_t)63);
        yv[m] = malloc((size_t)(T * R[m]) * 4);
        y0[m] = malloc((size_t)(T * R[m]) * 4);
        ref->rows[dt](W[m], &act, 0, R[m], y0[m]);
    }
    gf_linear_allow_amx(1);
    gf_linear_multi(pool, n_mats, W, x, T, y);
    gf_linear_allow_amx(0);
    gf_linear_multi(pool, n_mats, W, x, T, yv);
    gf_linear_allow_amx(1);
    for (int m = 0; m < n_mats; m++) {
        for (int64_t i = 0; i < T * R[m]; i++) {
            cr_assert(memcmp(&y[m][i], &y0[m][i], 4) == 0,
                      "dtype %d mat %d R=%lld C=%lld T=%lld: y[%lld] AMX %a, scalar %a", dt, m,
                      (long long)R[m], (long long)C, (long long)T, (long long)i, y[m][i], y0[m][i]);
            cr_assert(memcmp(&y[m][i], &yv[m][i], 4) == 0,
                      "dtype %d mat %d R=%lld C=%lld T=%lld: y[%lld] AMX %a, VNNI %a", dt, m,
                      (long long)R[m], (long long)C, (long long)T, (long long)i, y[m][i], yv[m][i]);
        }
        test_matrix_free(&tm[m]);
        free(y[m]);
        free(yv[m]);
        free(y0[m]);
    }
    test_q8_act_free(&act);
    free(x);
}

static void setup(void)
{
    gf_gemm_set_min_tokens(GF_DTYPE_Q8, 1);
    gf_gemm_set_min_tokens(GF_DTYPE_Q4, 1);
}

TestSuite(amx, .init = setup);

Test(amx, every_token_count_matches_scalar_and_vnni)
{
    require_amx();
    gf_threadpool *pool = gf_threadpool_new(2);
    for (int dt = GF_DTYPE_Q8; dt <= GF_DTYPE_Q4; dt++)
        for (int64_t T = 1; T <= 70; T++) {
            const int64_t R[1] = {45};
            check(pool, (gf_dtype)dt, 1, R, 96, T);
        }
    gf_threadpool_free(pool);
}

Test(amx, odd_shapes_match_scalar_and_vnni)
{
    require_amx();
    static const int64_t R_list[] = {1, 13, 16, 17, 33, 64, 100, 171};
    static const int64_t C_list[] = {32, 288, 544}; /* 544: a chunk of 256, then 32 */
    static const int64_t T_list[] = {1, 16, 17, 33, 70, 300};
    for (int threads = 1; threads <= 2; threads++) {
        gf_threadpool *pool = gf_threadpool_new(threads);
        for (int dt = GF_DTYPE_Q8; dt <= GF_DTYPE_Q4; dt++)
            for (int ri = 0; ri < N_ELEMS(R_list); ri++)
                for (int ci = 0; ci < N_ELEMS(C_list); ci++)
                    for (int ti = 0; ti < N_ELEMS(T_list); ti++) {
                        if (T_list[ti] > 70 && (C_list[ci] > 288 || R_list[ri] > 64))
                            continue; /* the long slice on small shapes */
                        check(pool, (gf_dtype)dt, 1, &R_list[ri], C_list[ci], T_list[ti]);
                    }
        gf_threadpool_free(pool);
    }
}

/* Work items count whole groups inside each matrix: several matrices of
 * odd heights in one call give the same bits as each alone (and scalar). */
Test(amx, several_matrices_at_once)
{
    require_amx();
    gf_threadpool *pool = gf_threadpool_new(2);
    const int64_t R[3] = {70, 19, 131};
    for (int dt = GF_DTYPE_Q8; dt <= GF_DTYPE_Q4; dt++) {
        check(pool, (gf_dtype)dt, 3, R, 160, 37);
        check(pool, (gf_dtype)dt, 2, R + 1, 64, 64);
    }
    gf_threadpool_free(pool);
}

/* Outputs of 8 MB or more are written with streaming stores where a
 * group's 16 floats fill an aligned line (the rest masked): a 256-token
 * slice of 8208 rows, then a short one. */
Test(amx, large_output_streamed)
{
    require_amx();
    gf_threadpool *pool = gf_threadpool_new(2);
    const int64_t R[1] = {8208};
    check(pool, GF_DTYPE_Q8, 1, R, 64, 300);
    check(pool, GF_DTYPE_Q4, 1, R, 32, 260);
    gf_threadpool_free(pool);
}

/* GEMFA_AMX=0 / gf_linear_allow_amx(0) turn it off; the status says so. */
Test(amx, switch_and_status)
{
    gf_linear_allow_amx(0);
    cr_assert(gf_linear_amx_allowed() == 0);
    const char *off = gf_linear_amx_status();
    gf_linear_allow_amx(1);
    const char *on = gf_linear_amx_status();
    if (gf_gemm_available(GF_GEMM_Q8_AMX)) {
        cr_assert_str_eq(on, "on");
        cr_assert_str_eq(off, "off (GEMFA_AMX=0)");
    } else {
        cr_assert_str_neq(on, "on");
    }
}
