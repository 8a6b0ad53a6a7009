/* sum_exp.c — the normalizer of gemfa_logprobs (see sum_exp.h). */
#include "sampling/fp.h"

#include "sampling/sum_exp.h"

#include <float.h>
#include <math.h>

#include "sampling/expneg.h"
#include "sampling/select.h"
#include "sampling/sampler.h"
#include "sampling/weights.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* Ids per chunk of the portable variant: a multiple of GF_DRAW_BLOCK, 16 KiB. */
#define CHUNK 4096

static double sum_portable(const float *x, size_t n, float max)
{
    float w[CHUNK];
    double block_sum[CHUNK / GF_DRAW_BLOCK];
    double z = 0.0;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        z += gf_weights_exp(x + i, w, m, max, 1.0f, block_sum);
    }
    return z;
}

static double sum_scalar(const float *x, size_t n, float max)
{
    double z = 0.0;
    for (size_t i = 0; i < n; i++)
        z += gf_exp_neg(gf_score(x[i]) - max);
    return z;
}

#if HAVE_X86

#define GF_AVX512 __attribute__((target("avx512f")))

/* e^t for t <= 0, 16 lanes: the constants of gf_exp_neg with FMA, the
 * power of two by scalef; t < -87 or NaN gives 0. */
GF_AVX512 static __m512 exp_neg16(__m512 t)
{
    __mmask16 keep = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-87.0f), _CMP_GE_OQ);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

/* gf_score - max, 16 lanes (NaN -> -inf, +inf -> FLT_MAX). */
GF_AVX512 static __m512 shifted16(__m512 x, __m512 vmax)
{
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    x = _mm512_mask_mov_ps(x, nan, _mm512_set1_ps(-INFINITY));
    x = _mm512_min_ps(x, _mm512_set1_ps(FLT_MAX));
    return _mm512_sub_ps(x, vmax);
}

/* Adds the 16 floats of e to two 8-lane double accumulators. */
GF_AVX512 static void add16(__m512d *lo, __m512d *hi, __m512 e)
{
    *lo = _mm512_add_pd(*lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    __m256 upper = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1));
    *hi = _mm512_add_pd(*hi, _mm512_cvtps_pd(upper));
}

GF_AVX512 static double sum_avx512(const float *x, size_t n, float max)
{
    __m512 vmax = _mm512_set1_ps(max);
    /* two independent pairs of chains: the adds do not wait on each other */
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        add16(&a0, &a1, exp_neg16(shifted16(_mm512_loadu_ps(x + i), vmax)));
        add16(&b0, &b1, exp_neg16(shifted16(_mm512_loadu_ps(x + i + 16), vmax)));
    }
    for (; i < n; i += 16) {
        size_t left = n - i < 16 ? n - i : 16;
        __mmask16 k = (__mmask16)((1u << left) - 1u);
        __m512 e = exp_neg16(shifted16(_mm512_maskz_loadu_ps(k, x + i), vmax));
        add16(&a0, &a1, _mm512_maskz_mov_ps(k, e)); /* lanes past the end add 0 */
    }
    __m512d s = _mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(b0, b1));
    return _mm512_reduce_add_pd(s);
}

#endif

gf_sum_exp_variant gf_sum_exp_best_isa(void)
{
#if HAVE_X86
    if (__builtin_cpu_supports("avx512f"))
        return GF_SUM_EXP_AVX512;
#endif
    return GF_SUM_EXP_PORTABLE;
}

double gf_sum_exp_isa(gf_sum_exp_variant isa, const float *x, size_t n, float max)
{
#if HAVE_X86
    if (isa == GF_SUM_EXP_AVX512)
        return sum_avx512(x, n, max);
#endif
    if (isa == GF_SUM_EXP_SCALAR)
        return sum_scalar(x, n, max);
    return sum_portable(x, n, max);
}

double gf_sum_exp(const float *x, size_t n, float max)
{
    return gf_sum_exp_isa(gf_sum_exp_best_isa(), x, n, max);
}
