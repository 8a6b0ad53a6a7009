/* kernels_avx2.c — AVX2 + FMA + F16C kernels.  Each weight row is loaded
 * and widened once and multiplied with up to 4 tokens, with two
 * accumulators per token to hide the FMA latency. */
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/convert.h"
#include "kernels/kernels.h"

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define MAX_NT 4
#define GF_PREFETCH 4096 /* see kernels_avx512.c */

INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE __m256 load8_f32(const void *p, int64_t i) { return _mm256_loadu_ps((const float *)p + i); }
INLINE __m256 load8_f16(const void *p, int64_t i)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}
INLINE __m256 load8_bf16(const void *p, int64_t i)
{
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
INLINE float load1_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
INLINE float load1_f16(const void *p, int64_t i) { return gf_f16_to_f32(((const uint16_t *)p)[i]); }
INLINE float load1_bf16(const void *p, int64_t i) { return gf_bf16_to_f32(((const uint16_t *)p)[i]); }

/* One row against nt tokens; nt is a constant after inlining. */
#define DEFINE_ROWS(NAME, ELEM, LOAD8, LOAD1)                                                 \
    INLINE void NAME##_dot(const ELEM *w, const float *x, int64_t n, int nt, float *out)      \
    {                                                                                         \
        __m256 acc0[MAX_NT], acc1[MAX_NT];                                                    \
        for (int t = 0; t < nt; t++)                                                          \
            acc0[t] = acc1[t] = _mm256_setzero_ps();                                          \
        int64_t c = 0;                                                                        \
        for (; c + 16 <= n; c += 16) {                                                        \
            for (int pf = 0; pf < 16 * (int)sizeof(ELEM); pf += 64)                           \
                _mm_prefetch((const char *)(w + c) + GF_PREFETCH + pf, _MM_HINT_T0);          \
            __m256 w0 = LOAD8(w, c), w1 = LOAD8(w, c + 8);                                    \
            for (int t = 0; t < nt; t++) {                                                    \
                acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * n + c), acc0[t]);       \
                acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * n + c + 8), acc1[t]);   \
            }                                                                                 \
        }                                                                                     \
        if (c + 8 <= n) {                                                                     \
            __m256 w0 = LOAD8(w, c);                                                          \
            for (int t = 0; t < nt; t++)                                                      \
                acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * n + c), acc0[t]);       \
            c += 8;                                                                           \
        }                                                                                     \
        for (int t = 0; t < nt; t++) {                                                        \
            float s = hsum(_mm256_add_ps(acc0[t], acc1[t]));                                  \
            for (int64_t k = c; k < n; k++)                                                   \
                s += LOAD1(w, k) * x[t * n + k];                                              \
            out[t] = s;                                                                       \
        }                                                                                     \
    }                                                                                         \
    TARGET static void NAME(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,      \
                            float *y)                                                         \
    {                                                                                         \
        const int64_t n = W->cols;                                                            \
        float out[MAX_NT];                                                                    \
        for (int64_t r = r0; r < r1; r++) {                                                   \
            const ELEM *w = (const ELEM *)W->data + r * n;                                    \
            for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {                            \
                const float *x = a->x + t0 * n;                                               \
                int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;           \
                switch (nt) {                                                                 \
                case 1: NAME##_dot(w, x, n, 1, out); break;                                   \
                case 2: NAME##_dot(w, x, n, 2, out); break;                                   \
                case 3: NAME##_dot(w, x, n, 3, out); break;                                   \
                default: NAME##_dot(w, x, n, 4, out); break;                                  \
                }                                                                             \
                for (int64_t t = 0; t < nt; t++)                                              \
                    y[(t0 + t) * W->rows + r] = out[t];                                       \
            }                                                                                 \
        }                                                                                     \
    }

DEFINE_ROWS(rows_f32, float, load8_f32, load1_f32)
DEFINE_ROWS(rows_f16, uint16_t, load8_f16, load1_f16)
DEFINE_ROWS(rows_bf16, uint16_t, load8_bf16, load1_bf16)

/* int8 weights in the interleaved Q8 layout (kernels/q8_format.h), 8 rows of a
 * group along the vector: per column quad one 32-byte load holds 4 bytes
 * of 8 rows.  |w| (unsigned) times the token's 4 bytes carrying w's sign,
 * pairs summed to int16 (|w| <= 128, |x| <= 127: no saturation), then to
 * int32; per block the sums become f32, scaled by d_w * d_x with one
 * rounding each (the scalar kernel's operations, lane by lane). */
INLINE __m256i q8_load8(const int8_t *p, int m, __m256i lanes)
{
    if (m == 8)
        return _mm256_loadu_si256((const __m256i *)p);
    return _mm256_maskload_epi32((const int *)p, lanes);
}

INLINE void q8_half(const int8_t *w, int64_t qs, const uint16_t *sw, int64_t h, int m,
                    const gf_q8_act *qa, int64_t n, int64_t t0, int nt, float out[MAX_NT][8])
{
    const int64_t nb = n / GF_Q8_BLOCK;
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(m),
                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 acc[MAX_NT];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *wb = w + b * 8 * qs;
        _mm_prefetch((const char *)wb + GF_PREFETCH, _MM_HINT_T0);
        __m256i isum[MAX_NT];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            __m256i wv = q8_load8(wb + j * qs, m, lanes);
            __m256i aw = _mm256_sign_epi8(wv, wv);
            for (int t = 0; t < nt; t++) {
                int32_t x4;
                memcpy(&x4, qa->q + (t0 + t) * n + b * GF_Q8_BLOCK + 4 * j, 4);
                __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(_mm256_set1_epi32(x4), wv));
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p16, ones));
            }
        }
        __m128i s16;
        if (m == 8) {
            s16 = _mm_loadu_si128((const __m128i *)(sw + b * h));
        } else {
            uint16_t part[8] = {0};
            memcpy(part, sw + b * h, (size_t)m * 2);
            s16 = _mm_loadu_si128((const __m128i *)part);
        }
        __m256 ws = _mm256_cvtph_ps(s16);
        for (int t = 0; t < nt; t++) {
            __m256 s = _mm256_mul_ps(ws, _mm256_set1_ps(qa->d[(t0 + t) * nb + b]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), s, acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm256_storeu_ps(out[t], acc[t]);
}

TARGET static void rows_q8(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1, float *y)
{
    const int64_t n = W->cols, nb = n / GF_Q8_BLOCK;
    float out[MAX_NT][8];
    for (int64_t g0 = r0 - r0 % GF_Q8_GROUP; g0 < r1; g0 += GF_Q8_GROUP) {
        const int64_t h = gf_q8_group_rows(W->rows, g0);
        for (int64_t half = 0; half * 8 < h; half++) {
            const int64_t lo = g0 + half * 8, m = h - half * 8 < 8 ? h - half * 8 : 8;
            if (lo + m <= r0 || lo >= r1)
                continue;
            const int8_t *w = (const int8_t *)W->data + g0 * n + half * 32;
            const uint16_t *sw = W->scales + g0 * nb + half * 8;
            for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {
                int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;
                switch (nt) {
                case 1: q8_half(w, 4 * h, sw, h, (int)m, &a->q8, n, t0, 1, out); break;
                case 2: q8_half(w, 4 * h, sw, h, (int)m, &a->q8, n, t0, 2, out); break;
                case 3: q8_half(w, 4 * h, sw, h, (int)m, &a->q8, n, t0, 3, out); break;
                default: q8_half(w, 4 * h, sw, h, (int)m, &a->q8, n, t0, 4, out); break;
                }
                for (int64_t t = 0; t < nt; t++)
                    for (int64_t i = 0; i < m; i++)
                        if (lo + i >= r0 && lo + i < r1)
                            y[(t0 + t) * W->rows + lo + i] = out[t][i];
            }
        }
    }
}

TARGET static void widen_row(const gf_matrix *W, int64_t r, float *out)
{
    const int64_t n = W->cols;
    int64_t c = 0;
    switch (W->dtype) {
    case GF_DTYPE_F32:
        memcpy(out, (const float *)W->data + r * n, (size_t)n * sizeof(float));
        return;
    case GF_DTYPE_F16:
        for (; c + 8 <= n; c += 8)
            _mm256_storeu_ps(out + c, load8_f16((const uint16_t *)W->data + r * n, c));
        for (; c < n; c++)
            out[c] = load1_f16((const uint16_t *)W->data + r * n, c);
        return;
    case GF_DTYPE_BF16:
        for (; c + 8 <= n; c += 8)
            _mm256_storeu_ps(out + c, load8_bf16((const uint16_t *)W->data + r * n, c));
        for (; c < n; c++)
            out[c] = load1_bf16((const uint16_t *)W->data + r * n, c);
        return;
    case GF_DTYPE_Q8: { /* two quads (interleaved layout) per step */
        const gf_q8_row q = gf_q8_row_of(W, r);
        for (; c < n; c += 8) {
            int32_t lo, hi;
            memcpy(&lo, q.q + (c / 4) * 4 * q.h, 4);
            memcpy(&hi, q.q + (c / 4 + 1) * 4 * q.h, 4);
            __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_setr_epi32(lo, hi, 0, 0)));
            float d = _cvtsh_ss(gf_q8_row_scale(q, c / GF_Q8_BLOCK));
            _mm256_storeu_ps(out + c, _mm256_mul_ps(v, _mm256_set1_ps(d)));
        }
        return;
    }
    }
}

void gf_kernels_fill_avx2(gf_kernel_table *t)
{
    t->bf16_pairs = 0;
    t->widen_row = widen_row;
    t->rows[GF_DTYPE_F32] = rows_f32;
    t->rows[GF_DTYPE_F16] = rows_f16;
    t->rows[GF_DTYPE_BF16] = rows_bf16;
    t->rows[GF_DTYPE_Q8] = rows_q8;
    /* quantize_q8 stays the scalar one: it is not on the hot path */
}
#endif
