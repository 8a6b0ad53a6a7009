/* kernels_avx512.c — AVX-512 kernels (F, BW, VL, DQ), with an AVX512-VNNI
 * int8 kernel where the CPU has it.  Same shape as the AVX2 kernels with
 * 16-float vectors and masked tails. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "kernels/kernels.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define TARGET_VNNI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INLINE static inline __attribute__((always_inline)) TARGET
#define MAX_NT 4
/* Software prefetch distance along the weights: the hardware prefetcher
 * alone keeps too few lines in flight for one core to read more than about
 * 20 GB/s of 16-bit weights (measured; 4 KB ahead reached 50+). */
#ifndef GF_PREFETCH
#define GF_PREFETCH 4096
#endif

static inline __mmask16 tail_mask(int64_t left) { return (__mmask16)((1u << left) - 1); }

INLINE __m512 load16_f32(const void *p, int64_t i) { return _mm512_loadu_ps((const float *)p + i); }
INLINE __m512 load16m_f32(const void *p, int64_t i, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}
INLINE __m512 load16_f16(const void *p, int64_t i)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
INLINE __m512 load16m_f16(const void *p, int64_t i, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}
INLINE __m512 bf16_widen(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
INLINE __m512 load16_bf16(const void *p, int64_t i)
{
    return bf16_widen(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
INLINE __m512 load16m_bf16(const void *p, int64_t i, __mmask16 m)
{
    return bf16_widen(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}

/* nr (1 or 2) rows against nt tokens, both constants after inlining: two
 * rows share every load of x (with 4 tokens of 16k columns, x lives in L2
 * and its loads, not the weights, set the pace).  Each row's arithmetic is
 * the same whether it is paired or not. */
#define DEFINE_ROWS(NAME, ELEM, LOAD16, LOAD16M)                                              \
    INLINE void NAME##_dot(const ELEM *w, int64_t ldw, int nr, const float *x, int64_t n,     \
                           int nt, float out[2][MAX_NT])                                      \
    {                                                                                         \
        __m512 acc0[2][MAX_NT], acc1[2][MAX_NT];                                              \
        for (int i = 0; i < nr; i++)                                                          \
            for (int t = 0; t < nt; t++)                                                      \
                acc0[i][t] = acc1[i][t] = _mm512_setzero_ps();                                \
        int64_t c = 0;                                                                        \
        for (; c + 32 <= n; c += 32) {                                                        \
            for (int i = 0; i < nr; i++)                                                      \
                for (int pf = 0; pf < 32 * (int)sizeof(ELEM); pf += 64)                       \
                    _mm_prefetch((const char *)(w + i * ldw + c) + GF_PREFETCH + pf, _MM_HINT_T0); \
            __m512 w0[2], w1[2];                                                              \
            for (int i = 0; i < nr; i++) {                                                    \
                w0[i] = LOAD16(w + i * ldw, c);                                               \
                w1[i] = LOAD16(w + i * ldw, c + 16);                                          \
            }                                                                                 \
            for (int t = 0; t < nt; t++) {                                                    \
                __m512 x0 = _mm512_loadu_ps(x + t * n + c), x1 = _mm512_loadu_ps(x + t * n + c + 16); \
                for (int i = 0; i < nr; i++) {                                                \
                    acc0[i][t] = _mm512_fmadd_ps(w0[i], x0, acc0[i][t]);                      \
                    acc1[i][t] = _mm512_fmadd_ps(w1[i], x1, acc1[i][t]);                      \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        for (; c < n; c += 16) {                                                              \
            __mmask16 m = n - c >= 16 ? (__mmask16)0xffff : tail_mask(n - c);                 \
            __m512 w0[2];                                                                     \
            for (int i = 0; i < nr; i++)                                                      \
                w0[i] = LOAD16M(w + i * ldw, c, m);                                           \
            for (int t = 0; t < nt; t++) {                                                    \
                __m512 x0 = _mm512_maskz_loadu_ps(m, x + t * n + c);                          \
                for (int i = 0; i < nr; i++)                                                  \
                    acc0[i][t] = _mm512_fmadd_ps(w0[i], x0, acc0[i][t]);                      \
            }                                                                                 \
        }                                                                                     \
        for (int i = 0; i < nr; i++)                                                          \
            for (int t = 0; t < nt; t++)                                                      \
                out[i][t] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i][t], acc1[i][t]));      \
    }                                                                                         \
    /* one row, one token: 64 columns per step in four chains, so that more   \
     * loads are in flight per core (decode is memory bound) */               \
    INLINE float NAME##_dot1(const ELEM *w, const float *x, int64_t n)                        \
    {                                                                                         \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                           \
        int64_t c = 0;                                                                        \
        for (; c + 64 <= n; c += 64) {                                                        \
            for (int pf = 0; pf < 64 * (int)sizeof(ELEM); pf += 64)                           \
                _mm_prefetch((const char *)(w + c) + GF_PREFETCH + pf, _MM_HINT_T0);          \
            a0 = _mm512_fmadd_ps(LOAD16(w, c), _mm512_loadu_ps(x + c), a0);                   \
            a1 = _mm512_fmadd_ps(LOAD16(w, c + 16), _mm512_loadu_ps(x + c + 16), a1);         \
            a2 = _mm512_fmadd_ps(LOAD16(w, c + 32), _mm512_loadu_ps(x + c + 32), a2);         \
            a3 = _mm512_fmadd_ps(LOAD16(w, c + 48), _mm512_loadu_ps(x + c + 48), a3);         \
        }                                                                                     \
        for (; c < n; c += 16) {                                                              \
            __mmask16 m = n - c >= 16 ? (__mmask16)0xffff : tail_mask(n - c);                 \
            a0 = _mm512_fmadd_ps(LOAD16M(w, c, m), _mm512_maskz_loadu_ps(m, x + c), a0);      \
        }                                                                                     \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))); \
    }                                                                                         \
    TARGET static void NAME(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,      \
                            float *y)                                                         \
    {                                                                                         \
        const int64_t n = W->cols;                                                            \
        float out[2][MAX_NT];                                                                 \
        if (a->n_tokens == 1) {                                                               \
            for (int64_t r = r0; r < r1; r++)                                                 \
                y[r] = NAME##_dot1((const ELEM *)W->data + r * n, a->x, n);                   \
            return;                                                                           \
        }                                                                                     \
        for (int64_t r = r0, nr; r < r1; r += nr) {                                           \
            const ELEM *w = (const ELEM *)W->data + r * n;                                    \
            nr = a->n_tokens > 1 && r + 1 < r1 ? 2 : 1; /* one token: one stream is faster */ \
            for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {                            \
                const float *x = a->x + t0 * n;                                               \
                int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;           \
                if (nr == 2) {                                                                \
                    switch (nt) {                                                             \
                    case 1: NAME##_dot(w, n, 2, x, n, 1, out); break;                         \
                    case 2: NAME##_dot(w, n, 2, x, n, 2, out); break;                         \
                    case 3: NAME##_dot(w, n, 2, x, n, 3, out); break;                         \
                    default: NAME##_dot(w, n, 2, x, n, 4, out); break;                        \
                    }                                                                         \
                } else {                                                                      \
                    switch (nt) {                                                             \
                    case 1: NAME##_dot(w, n, 1, x, n, 1, out); break;                         \
                    case 2: NAME##_dot(w, n, 1, x, n, 2, out); break;                         \
                    case 3: NAME##_dot(w, n, 1, x, n, 3, out); break;                         \
                    default: NAME##_dot(w, n, 1, x, n, 4, out); break;                        \
                    }                                                                         \
                }                                                                             \
                for (int i = 0; i < nr; i++)                                                  \
                    for (int64_t t = 0; t < nt; t++)                                          \
                        y[(t0 + t) * W->rows + r + i] = out[i][t];                            \
            }                                                                                 \
        }                                                                                     \
    }

DEFINE_ROWS(rows_f32, float, load16_f32, load16m_f32)
DEFINE_ROWS(rows_f16, uint16_t, load16_f16, load16m_f16)
DEFINE_ROWS(rows_bf16, uint16_t, load16_bf16, load16m_bf16)

/* Same results as the scalar quantizer, bit for bit: the same max, the same
 * 127/max and round-to-nearest-even conversion (NaN lanes give 0). */
TARGET static void quantize_q8(const float *x, int64_t n, int8_t *q, float *d, int32_t *corr)
{
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / 32; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        __mmask16 ord0 = _mm512_cmp_ps_mask(v0, v0, _CMP_ORD_Q);
        __mmask16 ord1 = _mm512_cmp_ps_mask(v1, v1, _CMP_ORD_Q);
        float amax = _mm512_reduce_max_ps(
            _mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask)));
        if ((ord0 & ord1) != 0xffff)
            amax = NAN;
        float id = amax > 0 ? 127.0f / amax : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512 p0 = _mm512_mul_ps(v0, vid), p1 = _mm512_mul_ps(v1, vid);
        __m512i i0 = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(p0, p0, _CMP_ORD_Q), p0);
        __m512i i1 = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(p1, p1, _CMP_ORD_Q), p1);
        __m128i q0 = _mm512_cvtsepi32_epi8(i0), q1 = _mm512_cvtsepi32_epi8(i1);
        _mm_storeu_si128((__m128i *)(q + b * 32), q0);
        _mm_storeu_si128((__m128i *)(q + b * 32 + 16), q1);
        int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        d[b] = amax / 127.0f;
        _mm256_storeu_si256((__m256i *)(corr + b * 8), _mm256_setr_epi32(-128 * sum, 0, 0, 0, 0, 0, 0, 0));
    }
}

/* VNNI: vpdpbusd multiplies unsigned by signed bytes, so the weights enter
 * as w + 128 (w ^ 0x80) and the accumulator starts at -128 * sum(q) of the
 * block (corr), which leaves exactly sum(w * q) in the block's 8 lanes.
 * One 64-byte step covers two blocks: lanes 0-7 and 8-15, scaled by
 * d_w * d_x of their block (a permute of 16 block scales). */
static inline __attribute__((always_inline)) TARGET_VNNI void
q8_dot(const int8_t *w, const uint16_t *sw, int64_t n, int nr, const gf_q8_act *qa, int64_t t0,
       int nt, float out[2][MAX_NT])
{
    const int64_t nb = n / 32;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512 acc[2][MAX_NT];
    const int8_t *q[MAX_NT];
    const float *d[MAX_NT];
    const int32_t *corr[MAX_NT];
    for (int t = 0; t < nt; t++) {
        for (int i = 0; i < nr; i++)
            acc[i][t] = _mm512_setzero_ps();
        q[t] = qa->q + (t0 + t) * n;
        d[t] = qa->d + (t0 + t) * nb;
        corr[t] = qa->corr + (t0 + t) * nb * 8;
    }
    const __m512i pair0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i two = _mm512_set1_epi32(2);
    for (int64_t b = 0; b < nb; b += 16) {
        int64_t left = nb - b < 16 ? nb - b : 16;
        __mmask16 m = left == 16 ? (__mmask16)0xffff : tail_mask(left);
        __m512 ws[2], s[2][MAX_NT];
        for (int i = 0; i < nr; i++)
            ws[i] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, sw + i * nb + b));
        for (int t = 0; t < nt; t++) {
            __m512 dx = _mm512_maskz_loadu_ps(m, d[t] + b);
            for (int i = 0; i < nr; i++)
                s[i][t] = _mm512_mul_ps(ws[i], dx);
        }
        __m512i idx = pair0;
        for (int64_t j = 0; j < left; j += 2) {
            const int64_t blk = b + j;
            const int whole = j + 1 < left; /* else a lone last block: upper half zero */
            const __mmask64 bm = whole ? ~0ull : 0xffffffffull;
            const __mmask16 cm = whole ? (__mmask16)0xffff : (__mmask16)0x00ff;
            __m512i wv[2];
            for (int i = 0; i < nr; i++) {
                _mm_prefetch((const char *)(w + i * n + blk * 32) + GF_PREFETCH, _MM_HINT_T0);
                wv[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(bm, w + i * n + blk * 32), flip);
            }
            for (int t = 0; t < nt; t++) {
                __m512i xv = _mm512_maskz_loadu_epi8(bm, q[t] + blk * 32);
                __m512i c0 = _mm512_maskz_loadu_epi32(cm, corr[t] + blk * 8);
                for (int i = 0; i < nr; i++) {
                    __m512i isum = _mm512_dpbusd_epi32(c0, wv[i], xv);
                    acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum),
                                                _mm512_permutexvar_ps(idx, s[i][t]), acc[i][t]);
                }
            }
            idx = _mm512_add_epi32(idx, two);
        }
    }
    for (int i = 0; i < nr; i++)
        for (int t = 0; t < nt; t++)
            out[i][t] = _mm512_reduce_add_ps(acc[i][t]);
}

TARGET_VNNI static void rows_q8(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,
                                float *y)
{
    const int64_t n = W->cols, nb = n / 32;
    float out[2][MAX_NT];
    for (int64_t r = r0, nr; r < r1; r += nr) {
        const int8_t *w = (const int8_t *)W->data + r * n;
        const uint16_t *sw = W->scales + r * nb;
        nr = a->n_tokens > 1 && r + 1 < r1 ? 2 : 1; /* one token: one stream is faster */
        for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {
            int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;
#define Q8_CASE(NR, NT) q8_dot(w, sw, n, NR, &a->q8, t0, NT, out)
            if (nr == 2) {
                switch (nt) {
                case 1: Q8_CASE(2, 1); break;
                case 2: Q8_CASE(2, 2); break;
                case 3: Q8_CASE(2, 3); break;
                default: Q8_CASE(2, 4); break;
                }
            } else {
                switch (nt) {
                case 1: Q8_CASE(1, 1); break;
                case 2: Q8_CASE(1, 2); break;
                case 3: Q8_CASE(1, 3); break;
                default: Q8_CASE(1, 4); break;
                }
            }
            for (int i = 0; i < nr; i++)
                for (int64_t t = 0; t < nt; t++)
                    y[(t0 + t) * W->rows + r + i] = out[i][t];
        }
    }
}

void gf_kernels_fill_avx512(gf_kernel_table *t, int has_vnni, int has_bf16)
{
    (void)has_bf16;
    t->rows[GF_DTYPE_F32] = rows_f32;
    t->rows[GF_DTYPE_F16] = rows_f16;
    t->rows[GF_DTYPE_BF16] = rows_bf16;
    if (has_vnni)
        t->rows[GF_DTYPE_Q8] = rows_q8;
    t->quantize_q8 = quantize_q8;
}
#endif
