/* kernels_avx512_q8.c — the AVX-512 int8 (Q8) pieces: the activation
 * quantizer, the weight quantizer and the VNNI row kernels (used only where
 * the CPU has AVX512-VNNI). */
#if defined(__x86_64__)
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kernels_avx512.h"

#define MAX_NT 4
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

/* Batches of 3+ tokens: 16 rows at a time with the rows along the vector.
 * A 64-byte step loads 16 rows x 64 bytes and transposes them (64 shuffles)
 * so that vector j holds bytes 4j..4j+3 of every row; then each token needs
 * only 8 vpdpbusd per block (its 4 bytes broadcast) and one scaling for all
 * 16 rows, instead of one per row: ~0.7 vector ops per (row, block, token)
 * plus ~2.5 per (row, block) for the transpose, against 2 per (row, block,
 * token) in q8_dot.  The weights enter as w + 128 (unsigned), the token's
 * block bias -128 * sum(q) starts each sum. */
#define T16_TOKENS 16

INLINE void transpose16(__m512i r[16])
{
    __m512i t[16], u[16];
    for (int g = 0; g < 4; g++) { /* rows 4g..4g+3 */
        __m512i a0 = _mm512_unpacklo_epi32(r[4 * g], r[4 * g + 1]);
        __m512i a1 = _mm512_unpackhi_epi32(r[4 * g], r[4 * g + 1]);
        __m512i a2 = _mm512_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]);
        __m512i a3 = _mm512_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
        /* u[4g + c]: in 128-bit lane L, dword 4L + c of rows 4g..4g+3 */
        t[4 * g + 0] = _mm512_unpacklo_epi64(a0, a2);
        t[4 * g + 1] = _mm512_unpackhi_epi64(a0, a2);
        t[4 * g + 2] = _mm512_unpacklo_epi64(a1, a3);
        t[4 * g + 3] = _mm512_unpackhi_epi64(a1, a3);
    }
    for (int c = 0; c < 4; c++) { /* a 4 x 4 transpose of 128-bit lanes */
        __m512i v0 = _mm512_shuffle_i32x4(t[c], t[4 + c], 0x88);
        __m512i v1 = _mm512_shuffle_i32x4(t[c], t[4 + c], 0xdd);
        __m512i v2 = _mm512_shuffle_i32x4(t[8 + c], t[12 + c], 0x88);
        __m512i v3 = _mm512_shuffle_i32x4(t[8 + c], t[12 + c], 0xdd);
        u[0 + c] = _mm512_shuffle_i32x4(v0, v2, 0x88);  /* lane 0: dword c */
        u[8 + c] = _mm512_shuffle_i32x4(v0, v2, 0xdd);  /* lane 2: dword 8 + c */
        u[4 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);  /* lane 1: dword 4 + c */
        u[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xdd); /* lane 3: dword 12 + c */
    }
    for (int j = 0; j < 16; j++)
        r[j] = u[j];
}

static inline __attribute__((always_inline)) TARGET_VNNI void
q8_rows16(const int8_t *w, const uint16_t *sw, int64_t n, const gf_q8_act *qa, int64_t t0, int nt,
          float *y, int64_t ldy)
{
    const int64_t nb = n / 32;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i row16 = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(16));
    float acc[T16_TOKENS][16];
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(acc[t], _mm512_setzero_ps());
    float dws[16][16]; /* [row][block of the chunk] */
    for (int64_t b0 = 0; b0 < nb; b0 += 16) {
        const int64_t nbc = nb - b0 < 16 ? nb - b0 : 16;
        const __mmask16 sm = nbc == 16 ? (__mmask16)0xffff : tail_mask(nbc);
        for (int i = 0; i < 16; i++)
            _mm512_storeu_ps(dws[i], _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(sm, sw + i * nb + b0)));
        for (int64_t bc = 0; bc < nbc; bc += 2) {
            const int64_t b = b0 + bc;
            const int two = bc + 1 < nbc;
            const __mmask64 lm = two ? ~0ull : 0xffffffffull;
            __m512i T[16];
            for (int i = 0; i < 16; i++) {
                _mm_prefetch((const char *)(w + i * n + b * 32) + GF_PREFETCH, _MM_HINT_T0);
                T[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(lm, w + i * n + b * 32), flip);
            }
            transpose16(T);
            __m512 dw0 = _mm512_i32gather_ps(_mm512_add_epi32(row16, _mm512_set1_epi32((int)bc)),
                                             &dws[0][0], 4);
            __m512 dw1 = dw0;
            if (two)
                dw1 = _mm512_i32gather_ps(_mm512_add_epi32(row16, _mm512_set1_epi32((int)bc + 1)),
                                          &dws[0][0], 4);
            for (int t = 0; t < nt; t++) {
                const int8_t *q = qa->q + (t0 + t) * n + b * 32;
                const int32_t *corr = qa->corr + ((t0 + t) * nb + b) * 8;
                const float *d = qa->d + (t0 + t) * nb + b;
                __m512 f = _mm512_loadu_ps(acc[t]);
                __m512i s0 = _mm512_set1_epi32(corr[0]);
                for (int j = 0; j < 8; j++)
                    s0 = _mm512_dpbusd_epi32(s0, T[j], _mm512_set1_epi32(load_i32(q + 4 * j)));
                f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(dw0, _mm512_set1_ps(d[0])), f);
                if (two) {
                    __m512i s1 = _mm512_set1_epi32(corr[8]);
                    for (int j = 0; j < 8; j++)
                        s1 = _mm512_dpbusd_epi32(s1, T[8 + j], _mm512_set1_epi32(load_i32(q + 32 + 4 * j)));
                    f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_mul_ps(dw1, _mm512_set1_ps(d[1])), f);
                }
                _mm512_storeu_ps(acc[t], f);
            }
        }
    }
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(y + (t0 + t) * ldy, _mm512_loadu_ps(acc[t]));
}

TARGET_VNNI static void rows_q8(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,
                                float *y)
{
    const int64_t n = W->cols, nb = n / 32;
    float out[2][MAX_NT];
    int64_t r = r0;
    if (a->n_tokens >= 3) /* whole groups of 16 rows, rows along the vector */
        for (; r + 16 <= r1; r += 16)
            for (int64_t t0 = 0; t0 < a->n_tokens; t0 += T16_TOKENS) {
                int nt = (int)(a->n_tokens - t0 < T16_TOKENS ? a->n_tokens - t0 : T16_TOKENS);
                q8_rows16((const int8_t *)W->data + r * n, W->scales + r * nb, n, &a->q8, t0, nt,
                          y + r, W->rows);
            }
    for (int64_t nr; r < r1; r += nr) {
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

/* Bit for bit the scalar weight quantizer: the same max (NaN skipped:
 * vmaxps returns its second operand when one is NaN), the same division,
 * the f16 rounding of vcvtps2ph (nearest even) and the same rounding of q. */
TARGET static void quantize_weights_q8(const float *x, int64_t n, int8_t *q, uint16_t *scales)
{
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    const __m512 half = _mm512_set1_ps(0.5f), mhalf = _mm512_set1_ps(-0.5f);
    const __m512i one = _mm512_set1_epi32(1);
    for (int64_t b = 0; b < n / 32; b++) {
        __m512 v[2] = {_mm512_loadu_ps(x + b * 32), _mm512_loadu_ps(x + b * 32 + 16)};
        __m512 m = _mm512_max_ps(_mm512_and_ps(v[0], absmask), _mm512_setzero_ps());
        m = _mm512_max_ps(_mm512_and_ps(v[1], absmask), m);
        float amax = _mm512_reduce_max_ps(m);
        float d = amax / 127.0f;
        scales[b] = (uint16_t)_mm_extract_epi16(
            _mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), 0);
        if (!(d > 0.0f && d <= FLT_MAX)) {
            memset(q + b * 32, 0, 32);
            continue;
        }
        const __m512 vd = _mm512_set1_ps(d);
        for (int h = 0; h < 2; h++) {
            __m512 r = _mm512_div_ps(v[h], vd);
            r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r); /* NaN -> 0 */
            r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
            __m512i t = _mm512_cvttps_epi32(r);
            __m512 frac = _mm512_sub_ps(r, _mm512_cvtepi32_ps(t));
            t = _mm512_mask_add_epi32(t, _mm512_cmp_ps_mask(frac, half, _CMP_GE_OQ), t, one);
            t = _mm512_mask_sub_epi32(t, _mm512_cmp_ps_mask(frac, mhalf, _CMP_LE_OQ), t, one);
            _mm_storeu_si128((__m128i *)(q + b * 32 + 16 * h), _mm512_cvtsepi32_epi8(t));
        }
    }
}

void gf_kernels_fill_avx512_q8(gf_kernel_table *t, int has_vnni)
{
    t->quantize_weights_q8 = quantize_weights_q8;
    t->quantize_q8 = quantize_q8;
    if (has_vnni)
        t->rows[GF_DTYPE_Q8] = rows_q8;
}
#endif
