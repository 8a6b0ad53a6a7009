/* kernels_avx512.c — AVX-512 row kernels for f32, F16 and BF16 weights
 * (F, BW, VL, DQ); the int8 ones are in kernels_avx512_q8.c.  Like the AVX2
 * kernels with 16-float vectors and masked tails, plus: one token streams a
 * row in four chains; batches pair rows (shared x loads); BF16 splits
 * 64-byte loads into even/odd lanes against paired x. */
#if defined(__x86_64__)
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kernels_avx512.h"

#define MAX_NT 4
/* One token and rows up to this wide: one row at a time (x stays in L1).
 * Wider rows go in pairs so that each load of x (then in L2) serves two
 * rows (measured on one core, 2048 x 16384: F16 ~26 -> ~30 GB/s, BF16 about
 * the same, against ~40 for the read probe; rows of 2048 reach ~38). */
#ifndef GF_PAIR_COLS
#define GF_PAIR_COLS 8192
#endif
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
        if (a->n_tokens == 1 && n <= GF_PAIR_COLS) {                                          \
            for (int64_t r = r0; r < r1; r++)                                                 \
                y[r] = NAME##_dot1((const ELEM *)W->data + r * n, a->x, n);                   \
            return;                                                                           \
        }                                                                                     \
        for (int64_t r = r0, nr; r < r1; r += nr) {                                           \
            const ELEM *w = (const ELEM *)W->data + r * n;                                    \
            nr = r + 1 < r1 ? 2 : 1;                                                          \
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

/* BF16 with paired activations (gf_act.xpair): one 64-byte load holds 32
 * weights; `<< 16` gives the even ones as f32, `& 0xffff0000` the odd ones,
 * against x reordered the same way: 3 vector ops per 32 weights where
 * widening with vpmovzxwd takes 4 (decode on a busy core is not only
 * memory bound). */
INLINE __m512i load32_bf16(const uint16_t *w, int64_t c, int64_t n)
{
    if (c + 32 <= n)
        return _mm512_loadu_si512(w + c);
    return _mm512_maskz_loadu_epi16((__mmask32)((1ull << (n - c)) - 1), w + c);
}

INLINE void bf16p_dot(const uint16_t *w, int64_t ldw, int nr, const float *xp, int64_t np,
                      int64_t n, int nt, float out[2][MAX_NT])
{
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    __m512 ae[2][MAX_NT], ao[2][MAX_NT];
    for (int i = 0; i < nr; i++)
        for (int t = 0; t < nt; t++)
            ae[i][t] = ao[i][t] = _mm512_setzero_ps();
    for (int64_t c = 0; c < n; c += 32) {
        __m512 we[2], wo[2];
        for (int i = 0; i < nr; i++) {
            _mm_prefetch((const char *)(w + i * ldw + c) + GF_PREFETCH, _MM_HINT_T0);
            __m512i v = load32_bf16(w + i * ldw, c, n);
            we[i] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            wo[i] = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
        }
        for (int t = 0; t < nt; t++) {
            __m512 xe = _mm512_loadu_ps(xp + t * np + c), xo = _mm512_loadu_ps(xp + t * np + c + 16);
            for (int i = 0; i < nr; i++) {
                ae[i][t] = _mm512_fmadd_ps(we[i], xe, ae[i][t]);
                ao[i][t] = _mm512_fmadd_ps(wo[i], xo, ao[i][t]);
            }
        }
    }
    for (int i = 0; i < nr; i++)
        for (int t = 0; t < nt; t++)
            out[i][t] = _mm512_reduce_add_ps(_mm512_add_ps(ae[i][t], ao[i][t]));
}

/* One token: 64 columns per step in four chains. */
INLINE float bf16p_dot1(const uint16_t *w, const float *xp, int64_t n)
{
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t c = 0;
    for (; c + 64 <= n; c += 64) {
        _mm_prefetch((const char *)(w + c) + GF_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)(w + c) + GF_PREFETCH + 64, _MM_HINT_T0);
        __m512i v0 = _mm512_loadu_si512(w + c), v1 = _mm512_loadu_si512(w + c + 32);
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(xp + c), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi)), _mm512_loadu_ps(xp + c + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), _mm512_loadu_ps(xp + c + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, hi)), _mm512_loadu_ps(xp + c + 48), a3);
    }
    for (; c < n; c += 32) {
        __m512i v = load32_bf16(w, c, n);
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(xp + c), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi)), _mm512_loadu_ps(xp + c + 16), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

TARGET static void rows_bf16(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1, float *y)
{
    const int64_t n = W->cols, np = gf_bf16_pairs_cols(n);
    const uint16_t *base = (const uint16_t *)W->data;
    float out[2][MAX_NT];
    if (a->n_tokens == 1 && n <= GF_PAIR_COLS) {
        for (int64_t r = r0; r < r1; r++)
            y[r] = bf16p_dot1(base + r * n, a->xpair, n);
        return;
    }
    for (int64_t r = r0, nr; r < r1; r += nr) {
        const uint16_t *w = base + r * n;
        nr = r + 1 < r1 ? 2 : 1;
        for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {
            const float *xp = a->xpair + t0 * np;
            int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;
#define BF16P_CASE(NR, NT) bf16p_dot(w, n, NR, xp, np, n, NT, out)
            if (nr == 2) {
                switch (nt) {
                case 1: BF16P_CASE(2, 1); break;
                case 2: BF16P_CASE(2, 2); break;
                case 3: BF16P_CASE(2, 3); break;
                default: BF16P_CASE(2, 4); break;
                }
            } else {
                switch (nt) {
                case 1: BF16P_CASE(1, 1); break;
                case 2: BF16P_CASE(1, 2); break;
                case 3: BF16P_CASE(1, 3); break;
                default: BF16P_CASE(1, 4); break;
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
    t->bf16_pairs = 1;
    gf_kernels_fill_avx512_q8(t, has_vnni);
}
#endif
