/* weights.c — exp and floor passes over the vocabulary (see weights.h). */
#include "sampling/fp.h"

#include "sampling/weights.h"

#include <stdint.h>

#include "sampling/expneg.h"
#include "sampling/sampler.h"
#include "sampling/select.h"

#if defined(__SSE2__)
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON) && !defined(GF_SIMD_DISABLED)
#include <arm_neon.h>
#define GF_WEIGHTS_HAVE_NEON 1
#endif

#define LANES GF_WEIGHT_LANES

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Adds the lanes in order, then the tail sum, as both twins do. */
static double lane_total(const double acc[LANES], double tail)
{
    double sum = 0.0;
    for (int j = 0; j < LANES; j++)
        sum += acc[j];
    return sum + tail;
}

/* ---- scalar twins ------------------------------------------------------ */

static double exp_scalar(const float *src, float *w, size_t n, float max, float inv_t,
                         double *block_sum)
{
    double z = 0.0;
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        size_t end = min_size(start + GF_DRAW_BLOCK, n), i = start;
        double acc[LANES] = {0}, tail = 0.0;
        for (; i + LANES <= end; i += LANES)
            for (int j = 0; j < LANES; j++) {
                float e = gf_exp_neg((gf_score(src[i + j]) - max) * inv_t);
                w[i + j] = e;
                acc[j] += e;
            }
        for (; i < end; i++) {
            w[i] = gf_exp_neg((gf_score(src[i]) - max) * inv_t);
            tail += w[i];
        }
        block_sum[b] = lane_total(acc, tail);
        z += block_sum[b];
    }
    return z;
}

double gf_weights_floor_scalar(float *w, size_t n, float floor, double *block_sum)
{
    double z = 0.0;
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        size_t end = min_size(start + GF_DRAW_BLOCK, n), i = start;
        double acc[LANES] = {0}, tail = 0.0;
        for (; i + LANES <= end; i += LANES)
            for (int j = 0; j < LANES; j++) {
                w[i + j] = w[i + j] >= floor ? w[i + j] : 0.0f;
                acc[j] += w[i + j];
            }
        for (; i < end; i++) {
            w[i] = w[i] >= floor ? w[i] : 0.0f;
            tail += w[i];
        }
        block_sum[b] = lane_total(acc, tail);
        z += block_sum[b];
    }
    return z;
}

#if defined(__SSE2__)

/* ---- SSE2: the same operations, four floats at a time ------------------ */

static __m128 score4(__m128 x)
{
    __m128 nan = _mm_cmpunord_ps(x, x);
    x = _mm_or_ps(_mm_andnot_ps(nan, x), _mm_and_ps(nan, _mm_set1_ps(-INFINITY)));
    return _mm_min_ps(x, _mm_set1_ps(FLT_MAX)); /* x is not NaN here */
}

/* gf_exp_neg, lane by lane */
static __m128 exp_neg4(__m128 x)
{
    __m128 underflow = _mm_cmpnge_ps(x, _mm_set1_ps(-87.0f));
    x = _mm_andnot_ps(underflow, x);
    __m128 magic = _mm_set1_ps(12582912.0f);
    __m128 t = _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)), magic);
    __m128 n = _mm_sub_ps(t, magic);
    __m128 r = _mm_sub_ps(x, _mm_mul_ps(n, _mm_set1_ps(0.693359375f)));
    r = _mm_sub_ps(r, _mm_mul_ps(n, _mm_set1_ps(-2.12194440e-4f)));
    __m128 p = _mm_set1_ps(1.9875691500e-4f);
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.3981999507e-3f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(8.3334519073e-3f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(4.1665795894e-2f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.6666665459e-1f));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(5.0000001201e-1f));
    p = _mm_add_ps(_mm_add_ps(_mm_mul_ps(p, _mm_mul_ps(r, r)), r), _mm_set1_ps(1.0f));
    __m128i bits = _mm_slli_epi32(_mm_add_epi32(_mm_cvttps_epi32(n), _mm_set1_epi32(127)), 23);
    __m128 e = _mm_mul_ps(p, _mm_castsi128_ps(bits));
    return _mm_andnot_ps(underflow, e);
}

/* acc[0..3] (lanes 0-3 as two pairs) and acc[4..7] += the 8 floats */
static void accumulate8(__m128d acc[4], __m128 lo, __m128 hi)
{
    acc[0] = _mm_add_pd(acc[0], _mm_cvtps_pd(lo));
    acc[1] = _mm_add_pd(acc[1], _mm_cvtps_pd(_mm_movehl_ps(lo, lo)));
    acc[2] = _mm_add_pd(acc[2], _mm_cvtps_pd(hi));
    acc[3] = _mm_add_pd(acc[3], _mm_cvtps_pd(_mm_movehl_ps(hi, hi)));
}

static void store_lanes(double out[LANES], const __m128d acc[4])
{
    for (int k = 0; k < 4; k++)
        _mm_storeu_pd(out + 2 * k, acc[k]);
}

static double exp_sse2(const float *src, float *w, size_t n, float max, float inv_t,
                       double *block_sum)
{
    __m128 vmax = _mm_set1_ps(max), vinv = _mm_set1_ps(inv_t);
    double z = 0.0;
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        size_t end = min_size(start + GF_DRAW_BLOCK, n), i = start;
        __m128d acc[4] = {_mm_setzero_pd(), _mm_setzero_pd(), _mm_setzero_pd(),
                          _mm_setzero_pd()};
        double tail = 0.0, lanes[LANES];
        for (; i + LANES <= end; i += LANES) {
            __m128 x0 = _mm_mul_ps(_mm_sub_ps(score4(_mm_loadu_ps(src + i)), vmax), vinv);
            __m128 x1 = _mm_mul_ps(_mm_sub_ps(score4(_mm_loadu_ps(src + i + 4)), vmax), vinv);
            __m128 e0 = exp_neg4(x0), e1 = exp_neg4(x1);
            _mm_storeu_ps(w + i, e0);
            _mm_storeu_ps(w + i + 4, e1);
            accumulate8(acc, e0, e1);
        }
        for (; i < end; i++) {
            w[i] = gf_exp_neg((gf_score(src[i]) - max) * inv_t);
            tail += w[i];
        }
        store_lanes(lanes, acc);
        block_sum[b] = lane_total(lanes, tail);
        z += block_sum[b];
    }
    return z;
}

double gf_weights_floor(float *w, size_t n, float floor, double *block_sum)
{
    __m128 vfloor = _mm_set1_ps(floor);
    double z = 0.0;
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        size_t end = min_size(start + GF_DRAW_BLOCK, n), i = start;
        __m128d acc[4] = {_mm_setzero_pd(), _mm_setzero_pd(), _mm_setzero_pd(),
                          _mm_setzero_pd()};
        double tail = 0.0, lanes[LANES];
        for (; i + LANES <= end; i += LANES) {
            __m128 e0 = _mm_loadu_ps(w + i), e1 = _mm_loadu_ps(w + i + 4);
            e0 = _mm_and_ps(e0, _mm_cmpge_ps(e0, vfloor));
            e1 = _mm_and_ps(e1, _mm_cmpge_ps(e1, vfloor));
            _mm_storeu_ps(w + i, e0);
            _mm_storeu_ps(w + i + 4, e1);
            accumulate8(acc, e0, e1);
        }
        for (; i < end; i++) {
            w[i] = w[i] >= floor ? w[i] : 0.0f;
            tail += w[i];
        }
        store_lanes(lanes, acc);
        block_sum[b] = lane_total(lanes, tail);
        z += block_sum[b];
    }
    return z;
}

/* ---- AVX2: eight floats at a time; GCC and clang compile these
 * functions for AVX2 only (no FMA: the target does not include it) ----- */

#define GF_AVX2 __attribute__((target("avx2")))

GF_AVX2 static __m256 score8(__m256 x)
{
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    x = _mm256_blendv_ps(x, _mm256_set1_ps(-INFINITY), nan);
    return _mm256_min_ps(x, _mm256_set1_ps(FLT_MAX));
}

GF_AVX2 static __m256 exp_neg8(__m256 x)
{
    __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_NGE_UQ);
    x = _mm256_andnot_ps(underflow, x);
    __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r),
                      _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(underflow, e);
}

GF_AVX2 static double exp_avx2(const float *src, float *w, size_t n, float max, float inv_t,
                               double *block_sum)
{
    __m256 vmax = _mm256_set1_ps(max), vinv = _mm256_set1_ps(inv_t);
    double z = 0.0;
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        size_t end = min_size(start + GF_DRAW_BLOCK, n), i = start;
        /* lanes 0-3 and 4-7, as the scalar twin's acc[0..8) */
        __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
        double tail = 0.0, lanes[LANES];
        for (; i + LANES <= end; i += LANES) {
            __m256 x = _mm256_mul_ps(_mm256_sub_ps(score8(_mm256_loadu_ps(src + i)), vmax), vinv);
            __m256 e = exp_neg8(x);
            _mm256_storeu_ps(w + i, e);
            lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
            hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
        }
        for (; i < end; i++) {
            w[i] = gf_exp_neg((gf_score(src[i]) - max) * inv_t);
            tail += w[i];
        }
        _mm256_storeu_pd(lanes, lo);
        _mm256_storeu_pd(lanes + 4, hi);
        block_sum[b] = lane_total(lanes, tail);
        z += block_sum[b];
    }
    return z;
}

gf_weights_isa gf_weights_best_isa(void)
{
    /* cheap: reads the CPU model the runtime filled in at startup */
    return __builtin_cpu_supports("avx2") ? GF_WEIGHTS_AVX2 : GF_WEIGHTS_SSE2;
}

double gf_weights_exp_isa(gf_weights_isa isa, const float *src, float *w, size_t n, float max,
                          float inv_t, double *block_sum)
{
    if (isa == GF_WEIGHTS_AVX2)
        return exp_avx2(src, w, n, max, inv_t, block_sum);
    if (isa == GF_WEIGHTS_SSE2)
        return exp_sse2(src, w, n, max, inv_t, block_sum);
    return exp_scalar(src, w, n, max, inv_t, block_sum);
}

#elif defined(GF_WEIGHTS_HAVE_NEON)

/* ---- NEON: the SSE2 code's operations, four floats at a time.  fp.h's
 * fp-contract=off keeps GCC from fusing vmulq + vaddq into FMLA, so every
 * lane rounds as gf_exp_neg does. ---------------------------------------- */

static float32x4_t score4(float32x4_t x)
{
    const uint32x4_t ok = vceqq_f32(x, x); /* false for NaN */
    x = vbslq_f32(ok, x, vdupq_n_f32(-INFINITY));
    return vminq_f32(x, vdupq_n_f32(FLT_MAX));
}

static float32x4_t exp_neg4(float32x4_t x)
{
    const uint32x4_t keep = vcgeq_f32(x, vdupq_n_f32(-87.0f)); /* !underflow (NaN: false) */
    x = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(x), keep));
    const float32x4_t magic = vdupq_n_f32(12582912.0f);
    const float32x4_t t = vaddq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)), magic);
    const float32x4_t n = vsubq_f32(t, magic);
    float32x4_t r = vsubq_f32(x, vmulq_f32(n, vdupq_n_f32(0.693359375f)));
    r = vsubq_f32(r, vmulq_f32(n, vdupq_n_f32(-2.12194440e-4f)));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.3981999507e-3f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(8.3334519073e-3f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(4.1665795894e-2f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.6666665459e-1f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(5.0000001201e-1f));
    p = vaddq_f32(vaddq_f32(vmulq_f32(p, vmulq_f32(r, r)), r), vdupq_n_f32(1.0f));
    /* n is integral: truncation (FCVTZS) is exact, as (int32_t)n */
    const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t e = vmulq_f32(p, vreinterpretq_f32_s32(bits));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(e), keep));
}

/* acc[0..1] (lanes 0-3 as two pairs) and acc[2..3] (lanes 4-7) += the 8 floats */
static void accumulate8(float64x2_t acc[4], float32x4_t lo, float32x4_t hi)
{
    acc[0] = vaddq_f64(acc[0], vcvt_f64_f32(vget_low_f32(lo)));
    acc[1] = vaddq_f64(acc[1], vcvt_high_f64_f32(lo));
    acc[2] = vaddq_f64(acc[2], vcvt_f64_f32(vget_low_f32(hi)));
    acc[3] = vaddq_f64(acc[3], vcvt_high_f64_f32(hi));
}

static void store_lanes(double out[LANES], const float64x2_t acc[4])
{
    for (int k = 0; k < 4; k++)
        vst1q_f64(out + 2 * k, acc[k]);
}

static double exp_neon(const float *src, float *w, size_t n, float max, float inv_t,
                       double *block_sum)
{
    const float32x4_t vmax = vdupq_n_f32(max), vinv = vdupq_n_f32(inv_t);
    double z = 0.0;
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        size_t end = min_size(start + GF_DRAW_BLOCK, n), i = start;
        float64x2_t acc[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0),
                              vdupq_n_f64(0.0)};
        double tail = 0.0, lanes[LANES];
        for (; i + LANES <= end; i += LANES) {
            float32x4_t x0 = vmulq_f32(vsubq_f32(score4(vld1q_f32(src + i)), vmax), vinv);
            float32x4_t x1 = vmulq_f32(vsubq_f32(score4(vld1q_f32(src + i + 4)), vmax), vinv);
            float32x4_t e0 = exp_neg4(x0), e1 = exp_neg4(x1);
            vst1q_f32(w + i, e0);
            vst1q_f32(w + i + 4, e1);
            accumulate8(acc, e0, e1);
        }
        for (; i < end; i++) {
            w[i] = gf_exp_neg((gf_score(src[i]) - max) * inv_t);
            tail += w[i];
        }
        store_lanes(lanes, acc);
        block_sum[b] = lane_total(lanes, tail);
        z += block_sum[b];
    }
    return z;
}

double gf_weights_floor(float *w, size_t n, float floor, double *block_sum)
{
    const float32x4_t vfloor = vdupq_n_f32(floor);
    double z = 0.0;
    for (size_t start = 0, b = 0; start < n; start += GF_DRAW_BLOCK, b++) {
        size_t end = min_size(start + GF_DRAW_BLOCK, n), i = start;
        float64x2_t acc[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0),
                              vdupq_n_f64(0.0)};
        double tail = 0.0, lanes[LANES];
        for (; i + LANES <= end; i += LANES) {
            float32x4_t e0 = vld1q_f32(w + i), e1 = vld1q_f32(w + i + 4);
            e0 = vreinterpretq_f32_u32(
                vandq_u32(vreinterpretq_u32_f32(e0), vcgeq_f32(e0, vfloor)));
            e1 = vreinterpretq_f32_u32(
                vandq_u32(vreinterpretq_u32_f32(e1), vcgeq_f32(e1, vfloor)));
            vst1q_f32(w + i, e0);
            vst1q_f32(w + i + 4, e1);
            accumulate8(acc, e0, e1);
        }
        for (; i < end; i++) {
            w[i] = w[i] >= floor ? w[i] : 0.0f;
            tail += w[i];
        }
        store_lanes(lanes, acc);
        block_sum[b] = lane_total(lanes, tail);
        z += block_sum[b];
    }
    return z;
}

gf_weights_isa gf_weights_best_isa(void) { return GF_WEIGHTS_NEON; }

double gf_weights_exp_isa(gf_weights_isa isa, const float *src, float *w, size_t n, float max,
                          float inv_t, double *block_sum)
{
    if (isa == GF_WEIGHTS_NEON)
        return exp_neon(src, w, n, max, inv_t, block_sum);
    return exp_scalar(src, w, n, max, inv_t, block_sum);
}

#else

gf_weights_isa gf_weights_best_isa(void) { return GF_WEIGHTS_SCALAR; }

double gf_weights_exp_isa(gf_weights_isa isa, const float *src, float *w, size_t n, float max,
                          float inv_t, double *block_sum)
{
    (void)isa;
    return exp_scalar(src, w, n, max, inv_t, block_sum);
}

double gf_weights_floor(float *w, size_t n, float floor, double *block_sum)
{
    return gf_weights_floor_scalar(w, n, floor, block_sum);
}

#endif

double gf_weights_exp(const float *src, float *w, size_t n, float max, float inv_t,
                      double *block_sum)
{
    return gf_weights_exp_isa(gf_weights_best_isa(), src, w, n, max, inv_t, block_sum);
}
