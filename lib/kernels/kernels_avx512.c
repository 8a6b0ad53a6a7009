/* kernels_avx512.c — AVX-512 row kernels for f32, F16 and BF16 weights
 * (F, BW, VL, DQ); the int8 ones are in kernels_avx512_q8.c.  Like the AVX2
 * kernels with 16-float vectors and masked tails, plus: one token streams a
 * row in four chains; batches (and one token on wide rows) take 4 rows at a
 * time (shared x loads); BF16 splits 64-byte loads into even/odd lanes
 * against paired x. */
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kernels_avx512.h"

#define MAX_NT 4
/* One token and rows up to this wide: one row at a time (x stays in L1).
 * Wider rows go in groups so that each load of x (then in L2) serves
 * several rows (measured with pairs on one core, 2048 x 16384: F16 ~26 ->
 * ~30 GB/s, BF16 about the same, against ~40 for the read probe; rows of
 * 2048 reach ~38). */
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
/* Two 16-lane halves of 32 weights from column c, and the matching x:
 * f32 and F16 widen columns c..c+15 and c+16..c+31; BF16 reads one 64-byte
 * load as even and odd columns (`<< 16`, `& 0xffff0000`: 3 vector ops per
 * 32 weights where vpmovzxwd takes 4) against x in the same order
 * (gf_act.xpair).  The _tail forms read the last n - c < 32 columns, with
 * zeros beyond (xpair is zero padded, plain x is masked). */
INLINE void w32_f32(const float *w, int64_t c, __m512 *lo, __m512 *hi)
{
    *lo = _mm512_loadu_ps(w + c);
    *hi = _mm512_loadu_ps(w + c + 16);
}
INLINE void w32_f16(const uint16_t *w, int64_t c, __m512 *lo, __m512 *hi)
{
    *lo = load16_f16(w, c);
    *hi = load16_f16(w, c + 16);
}
INLINE void w32_bf16(const uint16_t *w, int64_t c, __m512 *lo, __m512 *hi)
{
    __m512i v = _mm512_loadu_si512(w + c);
    *lo = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    *hi = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
}
INLINE __mmask16 mask_lo(int64_t left) { return left >= 16 ? (__mmask16)0xffff : tail_mask(left); }
INLINE __mmask16 mask_hi(int64_t left) { return left <= 16 ? 0 : tail_mask(left - 16); }
INLINE void w32t_f32(const float *w, int64_t c, int64_t n, __m512 *lo, __m512 *hi)
{
    *lo = _mm512_maskz_loadu_ps(mask_lo(n - c), w + c);
    *hi = _mm512_maskz_loadu_ps(mask_hi(n - c), w + c + 16);
}
INLINE void w32t_f16(const uint16_t *w, int64_t c, int64_t n, __m512 *lo, __m512 *hi)
{
    *lo = load16m_f16(w, c, mask_lo(n - c));
    *hi = load16m_f16(w, c + 16, mask_hi(n - c));
}
INLINE void w32t_bf16(const uint16_t *w, int64_t c, int64_t n, __m512 *lo, __m512 *hi)
{
    __m512i v = _mm512_maskz_loadu_epi16((__mmask32)((1ull << (n - c)) - 1), w + c);
    *lo = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    *hi = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
}
INLINE void x32t_plain(const float *x, int64_t c, int64_t n, __m512 *lo, __m512 *hi)
{
    *lo = _mm512_maskz_loadu_ps(mask_lo(n - c), x + c);
    *hi = _mm512_maskz_loadu_ps(mask_hi(n - c), x + c + 16);
}
INLINE void x32t_pairs(const float *x, int64_t c, int64_t n, __m512 *lo, __m512 *hi)
{
    (void)n;
    *lo = _mm512_loadu_ps(x + c);
    *hi = _mm512_loadu_ps(x + c + 16);
}

/* Software prefetch of the group kernels, in bytes of the weight stream as
 * the group reads it (nr rows side by side, so per row the distance / nr,
 * continued into the next groups' rows where a row ends): into L1
 * GF_PREFETCH_GROUP ahead; for 16-bit weights with GF_PREFETCH_L2_TOKENS+
 * tokens on rows up to GF_PREFETCH_L2_MAX_COLS, into L2 GF_PREFETCH_L2
 * ahead too.  With 3-4 tokens a group is near the FMA bound, so its loads
 * must not wait.  The old per-row 4 KB (GF_PREFETCH) on rows of 4 KB only
 * reached the other row of the same pair: a 4-token call on 16384 x 2048
 * F16 took 2.35x a one-token call; 1.38x with the stream distance, 1.18x
 * with the L2 one besides (quiet machine).  The L2 one made f32, 2 tokens,
 * one token and wide rows slower (2048 x 16384, one token: 1.1 against
 * 1.3 ms), and all of them when the neighbours load the memory; 6 or 8 KB
 * for L1, 32 or 64 KB for L2, or NTA hints measured no better
 * (docs/performance.md). */
#ifndef GF_PREFETCH_GROUP
#define GF_PREFETCH_GROUP 4096
#endif
#ifndef GF_PREFETCH_L2
#define GF_PREFETCH_L2 16384
#endif
#ifndef GF_PREFETCH_L2_TOKENS
#define GF_PREFETCH_L2_TOKENS 3
#endif
#ifndef GF_PREFETCH_L2_MAX_COLS
#define GF_PREFETCH_L2_MAX_COLS 8192
#endif

/* Where a group of nr rows (row stride n elements of `size` bytes) reads
 * `dist` bytes of its stream later: column `col` of the rows at `w`; past
 * the end of its rows the stream goes on in the next group's (4 rows on). */
typedef struct pf_cursor {
    const char *w;
    int64_t col, n, size;
} pf_cursor;
INLINE pf_cursor pf_start(const void *w, int64_t n, int64_t nr, int64_t size, int64_t dist)
{
    int64_t ahead = dist / (nr * size);
    return (pf_cursor){(const char *)w + ahead / n * 4 * n * size, ahead % n, n, size};
}
INLINE const char *pf_at(const pf_cursor *p, int i) { return p->w + (i * p->n + p->col) * p->size; }
INLINE void pf_next(pf_cursor *p, int64_t cols)
{
    p->col += cols;
    if (p->col >= p->n) {
        p->col -= p->n;
        p->w += 4 * p->n * p->size;
    }
}

/* nr (1..4) rows against nt (1..4) tokens, both constants after inlining:
 * the rows share every load of x, each x register serves nr FMAs.  One
 * accumulator per row and token takes both halves of each 32 columns (two
 * FMAs in a row: 4 rows x 4 tokens = 16 chains keep the FMA pipes busy with
 * 8 weight and 2 x registers beside them); with nt <= 2 each half has its
 * own chain.  The chains depend on nt only, so a row sums in the same order
 * whatever group it is in (and so whatever thread chunk).
 * Tried and dropped: blocks of 8..32 rows going through 1024..4096 columns
 * at a time, so that the slice of x stays in L1 on wide rows.  With the
 * weights in L2 that gave +30 % (F16, 4 tokens, 16384 columns), but from
 * memory, the case that matters, 2 tokens lost ~6 % and 4 tokens 1..3 %
 * (8..32 row streams at once instead of 4). */
#define DEFINE_GROUP(NAME, ELEM, W32, W32T, X32T)                                             \
    INLINE void NAME##_group(const ELEM *w, int64_t n, int nr, const float *x, int64_t ldx,   \
                             int nt, float out[4][MAX_NT])                                    \
    {                                                                                         \
        const int K = nt <= 2 ? 2 : 1; /* chains per row and token */                          \
        __m512 acc[2][4][MAX_NT];                                                             \
        for (int k = 0; k < K; k++)                                                           \
            for (int i = 0; i < nr; i++)                                                      \
                for (int t = 0; t < nt; t++)                                                  \
                    acc[k][i][t] = _mm512_setzero_ps();                                       \
        const int pf_l2 = nt >= GF_PREFETCH_L2_TOKENS && sizeof(ELEM) == 2 &&                 \
                          (GF_PREFETCH_L2_MAX_COLS == 0 || n <= GF_PREFETCH_L2_MAX_COLS);     \
        pf_cursor near = pf_start(w, n, nr, sizeof(ELEM), GF_PREFETCH_GROUP);                 \
        pf_cursor far = pf_start(w, n, nr, sizeof(ELEM), GF_PREFETCH_L2);                     \
        int64_t c = 0;                                                                        \
        for (; c + 32 <= n; c += 32) {                                                        \
            for (int i = 0; i < nr; i++)                                                      \
                for (int b = 0; b < 32 * (int)sizeof(ELEM); b += 64) {                        \
                    _mm_prefetch(pf_at(&near, i) + b, _MM_HINT_T0);                           \
                    if (pf_l2)                                                                \
                        _mm_prefetch(pf_at(&far, i) + b, _MM_HINT_T1);                        \
                }                                                                             \
            pf_next(&near, 32);                                                               \
            if (pf_l2)                                                                        \
                pf_next(&far, 32);                                                            \
            __m512 lo[4], hi[4];                                                              \
            for (int i = 0; i < nr; i++)                                                      \
                W32(w + i * n, c, &lo[i], &hi[i]);                                            \
            for (int t = 0; t < nt; t++) {                                                    \
                __m512 x0 = _mm512_loadu_ps(x + t * ldx + c);                                 \
                __m512 x1 = _mm512_loadu_ps(x + t * ldx + c + 16);                            \
                for (int i = 0; i < nr; i++) {                                                \
                    acc[0][i][t] = _mm512_fmadd_ps(lo[i], x0, acc[0][i][t]);                  \
                    acc[K - 1][i][t] = _mm512_fmadd_ps(hi[i], x1, acc[K - 1][i][t]);          \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        if (c < n) {                                                                          \
            __m512 lo[4], hi[4];                                                              \
            for (int i = 0; i < nr; i++)                                                      \
                W32T(w + i * n, c, n, &lo[i], &hi[i]);                                        \
            for (int t = 0; t < nt; t++) {                                                    \
                __m512 x0, x1;                                                                \
                X32T(x + t * ldx, c, n, &x0, &x1);                                            \
                for (int i = 0; i < nr; i++) {                                                \
                    acc[0][i][t] = _mm512_fmadd_ps(lo[i], x0, acc[0][i][t]);                  \
                    acc[K - 1][i][t] = _mm512_fmadd_ps(hi[i], x1, acc[K - 1][i][t]);          \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        for (int i = 0; i < nr; i++)                                                          \
            for (int t = 0; t < nt; t++)                                                      \
                out[i][t] = _mm512_reduce_add_ps(K == 2 ? _mm512_add_ps(acc[0][i][t], acc[1][i][t]) \
                                                        : acc[0][i][t]);                      \
    }                                                                                         \
    INLINE void NAME##_group_any(const ELEM *w, int64_t n, int64_t nr, const float *x,        \
                                 int64_t ldx, int64_t nt, float out[4][MAX_NT])               \
    {                                                                                         \
        switch ((nr - 1) * 4 + (nt - 1)) {                                                    \
        case 0: NAME##_group(w, n, 1, x, ldx, 1, out); break;\
        case 1: NAME##_group(w, n, 1, x, ldx, 2, out); break;\
        case 2: NAME##_group(w, n, 1, x, ldx, 3, out); break;\
        case 3: NAME##_group(w, n, 1, x, ldx, 4, out); break;\
        case 4: NAME##_group(w, n, 2, x, ldx, 1, out); break;\
        case 5: NAME##_group(w, n, 2, x, ldx, 2, out); break;\
        case 6: NAME##_group(w, n, 2, x, ldx, 3, out); break;\
        case 7: NAME##_group(w, n, 2, x, ldx, 4, out); break;\
        case 8: NAME##_group(w, n, 3, x, ldx, 1, out); break;\
        case 9: NAME##_group(w, n, 3, x, ldx, 2, out); break;\
        case 10: NAME##_group(w, n, 3, x, ldx, 3, out); break;\
        case 11: NAME##_group(w, n, 3, x, ldx, 4, out); break;\
        case 12: NAME##_group(w, n, 4, x, ldx, 1, out); break;\
        case 13: NAME##_group(w, n, 4, x, ldx, 2, out); break;\
        case 14: NAME##_group(w, n, 4, x, ldx, 3, out); break;\
        default: NAME##_group(w, n, 4, x, ldx, 4, out); break;\
        }                                                                                     \
    }                                                                                         \
    /* all rows [r0, r1) in groups of 4 (the last one 1..4), tokens 4 at a    \
     * time */                                                                \
    INLINE void NAME##_groups(const ELEM *base, int64_t n, const float *x, int64_t ldx,       \
                              int64_t n_tokens, int64_t r0, int64_t r1, int64_t ldy, float *y) \
    {                                                                                         \
        float out[4][MAX_NT];                                                                 \
        for (int64_t r = r0, nr; r < r1; r += nr) {                                           \
            nr = r1 - r < 4 ? r1 - r : 4;                                                     \
            for (int64_t t0 = 0; t0 < n_tokens; t0 += MAX_NT) {                               \
                int64_t nt = n_tokens - t0 < MAX_NT ? n_tokens - t0 : MAX_NT;                 \
                NAME##_group_any(base + r * n, n, nr, x + t0 * ldx, ldx, nt, out);            \
                for (int64_t i = 0; i < nr; i++)                                              \
                    for (int64_t t = 0; t < nt; t++)                                          \
                        y[(t0 + t) * ldy + r + i] = out[i][t];                                \
            }                                                                                 \
        }                                                                                     \
    }

DEFINE_GROUP(f32, float, w32_f32, w32t_f32, x32t_plain)
DEFINE_GROUP(f16, uint16_t, w32_f16, w32t_f16, x32t_plain)
DEFINE_GROUP(bf16, uint16_t, w32_bf16, w32t_bf16, x32t_pairs)

/* One row, one token: 64 columns per step in four chains, so that more
 * loads are in flight per core (decode is memory bound). */
#define DEFINE_DOT1(NAME, ELEM, LOAD16, LOAD16M)                                              \
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
    TARGET static void rows_##NAME(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1, \
                                   float *y)                                                  \
    {                                                                                         \
        const int64_t n = W->cols;                                                            \
        const ELEM *base = (const ELEM *)W->data;                                             \
        if (a->n_tokens == 1 && n <= GF_PAIR_COLS) {                                          \
            for (int64_t r = r0; r < r1; r++)                                                 \
                y[r] = NAME##_dot1(base + r * n, a->x, n);                                    \
            return;                                                                           \
        }                                                                                     \
        NAME##_groups(base, n, a->x, n, a->n_tokens, r0, r1, W->rows, y);                     \
    }

DEFINE_DOT1(f32, float, load16_f32, load16m_f32)
DEFINE_DOT1(f16, uint16_t, load16_f16, load16m_f16)

/* BF16, one token: as above against the paired x, 64 columns per step. */
INLINE float bf16p_dot1(const uint16_t *w, const float *xp, int64_t n)
{
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t c = 0;
    for (; c + 64 <= n; c += 64) {
        _mm_prefetch((const char *)(w + c) + GF_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)(w + c) + GF_PREFETCH + 64, _MM_HINT_T0);
        /* BF16 checkpoints are used in place from the page cache: there a
         * second prefetch 16 KB ahead into L2 took E4B decode from 5.1-5.4
         * to 6.0-6.3 tok/s (quiet, probe ~70 GB/s); from the library's own
         * memory (bench_kernels) it changed nothing measurable. */
        _mm_prefetch((const char *)(w + c) + 16384, _MM_HINT_T1);
        _mm_prefetch((const char *)(w + c) + 16384 + 64, _MM_HINT_T1);
        __m512i v0 = _mm512_loadu_si512(w + c), v1 = _mm512_loadu_si512(w + c + 32);
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)), _mm512_loadu_ps(xp + c), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v0, hi)), _mm512_loadu_ps(xp + c + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)), _mm512_loadu_ps(xp + c + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v1, hi)), _mm512_loadu_ps(xp + c + 48), a3);
    }
    for (; c < n; c += 32) {
        __m512 lo, hi2;
        if (c + 32 <= n)
            w32_bf16(w, c, &lo, &hi2);
        else
            w32t_bf16(w, c, n, &lo, &hi2);
        a0 = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xp + c), a0);
        a1 = _mm512_fmadd_ps(hi2, _mm512_loadu_ps(xp + c + 16), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

TARGET static void rows_bf16(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1, float *y)
{
    const int64_t n = W->cols;
    const uint16_t *base = (const uint16_t *)W->data;
    if (a->n_tokens == 1 && n <= GF_PAIR_COLS) {
        for (int64_t r = r0; r < r1; r++)
            y[r] = bf16p_dot1(base + r * n, a->xpair, n);
        return;
    }
    bf16_groups(base, n, a->xpair, gf_bf16_pairs_cols(n), a->n_tokens, r0, r1, W->rows, y);
}

void gf_kernels_fill_avx512(gf_kernel_table *t, int has_vnni, int has_bf16)
{
    (void)has_bf16;
    t->rows[GF_DTYPE_F32] = rows_f32;
    t->rows[GF_DTYPE_F16] = rows_f16;
    t->rows[GF_DTYPE_BF16] = rows_bf16;
    t->bf16_pairs = 1;
    gf_kernels_fill_avx512_q8(t, has_vnni);
    gf_kernels_fill_avx512_q4(t, has_vnni);
}
#endif
