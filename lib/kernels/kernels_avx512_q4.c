/* kernels_avx512_q4.c — the AVX-512 4-bit (Q4) pieces: the VNNI row kernel
 * (used only where the CPU has AVX512-VNNI) and the weight quantizer. */
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kernels_avx512.h"

/* As for Q8 (kernels_avx512_q8.c): with 2+ tokens also prefetch into L2. */
#define Q4_PREFETCH_L2 16384
/* Tokens per pass over the weights. */
#define MAX_NT 8

/* The Q8 kernel's scheme on the Q4 layout (kernels/q4_format.h): one
 * 64-byte load holds 8 columns of a group's 16 rows; its low nibbles are a
 * column quad as Q8 lays it out, its high nibbles the next quad, so after
 * an and / a shift-and vpdpbusd multiplies each by the token's 4 bytes.
 * The codes u = k + 8 are unsigned, as vpdpbusd wants; each block sum
 * starts at -8 * sum(q) (the Q8 correction -128 * sum(q) divided by 16),
 * which leaves exactly sum(k * q).  Then per block the scalar kernel's
 * fma(isum, d_w * d_x, acc): results agree with it bit for bit. */
static inline __attribute__((always_inline)) TARGET_VNNI void
q4_group(const uint8_t *w, const uint16_t *sw, int64_t n, int64_t h, const gf_q8_act *qa,
         int64_t t0, int nt, float out[MAX_NT][16])
{
    const int64_t nb = n / 32, qs = 4 * h; /* bytes from one column octet to the next */
    const __m512i low = _mm512_set1_epi8(0x0f);
    const __mmask64 lm = h == 16 ? ~0ull : (1ull << (4 * h)) - 1;
    const __mmask16 sm = tail_mask(h);
    __m512 f[MAX_NT];
    const int8_t *q[MAX_NT];
    for (int t = 0; t < nt; t++) {
        f[t] = _mm512_setzero_ps();
        q[t] = qa->q + (t0 + t) * n;
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 4 * qs;
        for (int64_t pf = 0; pf < 4 * qs; pf += 64) {
            _mm_prefetch((const char *)wb + GF_PREFETCH + pf, _MM_HINT_T0);
            if (nt > 1)
                _mm_prefetch((const char *)wb + Q4_PREFETCH_L2 + pf, _MM_HINT_T1);
        }
        __m512i s0[MAX_NT], s1[MAX_NT]; /* two chains per token: low and high nibbles */
        for (int t = 0; t < nt; t++) {
            s0[t] = _mm512_set1_epi32(qa->corr[((t0 + t) * nb + b) * 8] / 16);
            s1[t] = _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int o = 0; o < 4; o++) {
            const __m512i v = _mm512_maskz_loadu_epi8(lm, wb + o * qs);
            const __m512i lo = _mm512_and_si512(v, low);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
            for (int t = 0; t < nt; t++) {
                const int8_t *qb = q[t] + b * 32 + 8 * o;
                s0[t] = _mm512_dpbusd_epi32(s0[t], lo, _mm512_set1_epi32(load_i32(qb)));
                s1[t] = _mm512_dpbusd_epi32(s1[t], hi, _mm512_set1_epi32(load_i32(qb + 4)));
            }
        }
        __m512 ws = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(sm, sw + b * h));
        for (int t = 0; t < nt; t++) {
            __m512 s = _mm512_mul_ps(ws, _mm512_set1_ps(qa->d[(t0 + t) * nb + b]));
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0[t], s1[t])), s, f[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(out[t], f[t]);
}

TARGET_VNNI static void rows_q4(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,
                                float *y)
{
    const int64_t n = W->cols, nb = n / 32;
    float out[MAX_NT][16];
    for (int64_t g0 = r0 - r0 % GF_Q4_GROUP; g0 < r1; g0 += GF_Q4_GROUP) {
        const int64_t h = gf_q4_group_rows(W->rows, g0);
        const uint8_t *w = (const uint8_t *)W->data + g0 * (n / 2);
        const uint16_t *sw = W->scales + g0 * nb;
        const int64_t lo = g0 < r0 ? r0 - g0 : 0, hi = g0 + h > r1 ? r1 - g0 : h;
        const __mmask16 keep = (__mmask16)(tail_mask(hi) & ~tail_mask(lo));
        for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {
            const int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;
            switch (nt) {
            case 1: q4_group(w, sw, n, h, &a->q8, t0, 1, out); break;
            case 2: q4_group(w, sw, n, h, &a->q8, t0, 2, out); break;
            case 3: q4_group(w, sw, n, h, &a->q8, t0, 3, out); break;
            case 4: q4_group(w, sw, n, h, &a->q8, t0, 4, out); break;
            case 5: q4_group(w, sw, n, h, &a->q8, t0, 5, out); break;
            case 6: q4_group(w, sw, n, h, &a->q8, t0, 6, out); break;
            case 7: q4_group(w, sw, n, h, &a->q8, t0, 7, out); break;
            default: q4_group(w, sw, n, h, &a->q8, t0, 8, out); break;
            }
            for (int64_t t = 0; t < nt; t++)
                _mm512_mask_storeu_ps(y + (t0 + t) * W->rows + g0, keep, _mm512_loadu_ps(out[t]));
        }
    }
}

void gf_kernels_fill_avx512_q4(gf_kernel_table *t, int has_vnni)
{
    if (has_vnni)
        t->rows[GF_DTYPE_Q4] = rows_q4;
}
#endif
