/* kernels_avx512_q8.c — the AVX-512 int8 (Q8) pieces: the activation
 * quantizer, the weight quantizer and the VNNI row kernels (used only where
 * the CPU has AVX512-VNNI). */
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <cpuid.h>
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kernels_avx512.h"

/* With 2+ tokens a block takes longer to compute, and on the AMD Zen 5 the
 * 4 KB prefetch into L1 alone left a 4-token product at ~1.2-1.8x the time
 * of a 1-token one from memory; a second prefetch 16 KB ahead into L2
 * brought it to ~1.0x (2 threads, bench_kernels, docs/performance.md).  On
 * the Intel Xeon the same second prefetch costs the pair kernel (2-4
 * tokens, 2 KB into L1) 7-9 %: a 16384 x 2048 product for 4 tokens reads
 * 26.3-27.5 GB/s with it, 28.4-30.1 without (4, 8, 16 KB into L2 alone or
 * besides: 26.5-27.8), and E4B int8 batches of 4 run 21.2-21.3 -> 22.7
 * tok/s; the group kernel (5-8 tokens) still gains from it (8 tokens:
 * 23.1-23.8 GB/s with, 21.0-21.4 without).  So on Intel CPUs pairs leave
 * it out (pair_l2_prefetch); the Zen 5 keeps what was measured there. */
#define Q8_PREFETCH_L2 16384
static int pair_l2_prefetch = 1;
/* One token: a second prefetch 4 KB ahead into L2 keeps more lines in
 * flight than the L1 one alone.  It was measured ~3 % slower once with
 * bench_kernels rotating over 256 MB, which the 480 MB L3 of the Intel Xeon
 * holds; from DRAM (-m 3000) a 16384 x 2048 matvec reads 28.9 -> 30.1
 * GB/s and E4B int8 decodes 6.0 -> 6.35 tok/s (16 KB ahead: no gain). */
#define Q8_PREFETCH_L2_1 4096
/* Into L1, 2 KB ahead (4 blocks of a full group): on the Intel Xeon one
 * decode step of E4B ran 4.76 tok/s with the 4 KB of the 16-bit kernels
 * and 5.03-5.15 with 2 KB, alternating in one run (1 KB: 5.14; 3 KB:
 * 5.13-5.17; 6 KB: 4.63; docs/performance.md).  A stream that prefetches
 * further than it needs evicts lines L1 still has to read. */
#define Q8_PREFETCH 2048
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

/* Rows along the vector: the interleaved Q8 layout (kernels/q8_format.h) gives
 * per 64-byte load 4 columns of the 16 rows of a group, which vpdpbusd
 * multiplies by the token's 4 bytes (broadcast) into 16 row sums.  A block
 * of 32 columns is 8 loads, shared by every token; per token it costs 8
 * vpdpbusd and one scaling for all 16 rows (int32 -> f32, d_w * d_x, FMA),
 * so 4 tokens cost little more than one and the loads stay the bottleneck.
 * vpdpbusd multiplies unsigned by signed bytes: the weights enter as
 * w + 128 (w ^ 0x80) and each block sum starts at the token's -128 * sum(q)
 * (corr), which leaves exactly sum(w * q).  Per row and token the
 * operations are those of the scalar kernel (exact block sums, then
 * fma(isum, d_w * d_x, acc) block after block): results agree bit for bit
 * whatever the number of tokens or the rows a call covers.  A last group of
 * h < 16 rows loads 4h bytes per quad (masked), and only rows [r0, r1)
 * are stored. */
static inline __attribute__((always_inline)) TARGET_VNNI void
q8_group(const int8_t *w, const uint16_t *sw, int64_t n, int64_t h, const gf_q8_act *qa,
         int64_t t0, int nt, float out[GF_MAX_NT][16])
{
    const int64_t nb = n / 32, qs = 4 * h; /* bytes from one column quad to the next */
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __mmask64 lm = h == 16 ? ~0ull : (1ull << (4 * h)) - 1;
    const __mmask16 sm = tail_mask(h);
    __m512 f[GF_MAX_NT];
    const int8_t *q[GF_MAX_NT];
    for (int t = 0; t < nt; t++) {
        f[t] = _mm512_setzero_ps();
        q[t] = qa->q + (t0 + t) * n;
    }
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *wb = w + b * 8 * qs;
        for (int64_t pf = 0; pf < 8 * qs; pf += 64) {
            _mm_prefetch((const char *)wb + Q8_PREFETCH + pf, _MM_HINT_T0);
            _mm_prefetch((const char *)wb + (nt > 1 ? Q8_PREFETCH_L2 : Q8_PREFETCH_L2_1) + pf,
                         _MM_HINT_T1);
        }
        __m512i s0[GF_MAX_NT], s1[GF_MAX_NT]; /* two chains per token: even and odd quads */
        for (int t = 0; t < nt; t++) {
            s0[t] = _mm512_set1_epi32(qa->corr[((t0 + t) * nb + b) * 8]);
            s1[t] = _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int j = 0; j < 8; j += 2) {
            __m512i w0 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(lm, wb + j * qs), flip);
            __m512i w1 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(lm, wb + (j + 1) * qs), flip);
            for (int t = 0; t < nt; t++) {
                const int8_t *qb = q[t] + b * 32 + 4 * j;
                s0[t] = _mm512_dpbusd_epi32(s0[t], w0, _mm512_set1_epi32(load_i32(qb)));
                s1[t] = _mm512_dpbusd_epi32(s1[t], w1, _mm512_set1_epi32(load_i32(qb + 4)));
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

/* A group for gf_rows_walk.  Full groups (all but a matrix's last when rows %
 * 16 != 0) with h a constant: the prefetches and loads unroll without bounds
 * checks (batches of 4 ~3 % faster with Q4, kernels_avx512_q4.c). */
TARGET_VNNI static void q8_any_group(const void *wv, const uint16_t *sw, int64_t n, int64_t h,
                                     const gf_q8_act *qa, int64_t t0, int nt,
                                     float out[GF_MAX_NT][16])
{
    const int8_t *w = wv;
    if (h == GF_Q8_GROUP)
        GF_GROUP_DISPATCH(q8_group, w, sw, n, GF_Q8_GROUP, qa, t0, nt, out)
    else
        GF_GROUP_DISPATCH(q8_group, w, sw, n, h, qa, t0, nt, out)
}

/* Two full groups side by side for up to GF_PAIR_NT tokens, as Q4 does
 * (kernels_avx512_q4.c): each token's broadcast bytes serve 32 rows.  The
 * same operations per row as q8_group, so the same results. */
static inline __attribute__((always_inline)) TARGET_VNNI void
q8_pair(const int8_t *w, const uint16_t *sw, int64_t n, const gf_q8_act *qa, int nt,
        float out[2][GF_MAX_NT][16])
{
    const int64_t nb = n / 32, gbytes = GF_Q8_GROUP * n, gscales = GF_Q8_GROUP * nb;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512 f[2][GF_PAIR_NT];
    const int8_t *q[GF_PAIR_NT];
    for (int t = 0; t < nt; t++) {
        f[0][t] = f[1][t] = _mm512_setzero_ps();
        q[t] = qa->q + t * n;
    }
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *wb = w + b * 512;
        for (int64_t pf = 0; pf < 512; pf += 64)
            for (int g = 0; g < 2; g++) {
                _mm_prefetch((const char *)wb + g * gbytes + Q8_PREFETCH + pf, _MM_HINT_T0);
                if (nt == 1 || pair_l2_prefetch)
                    _mm_prefetch((const char *)wb + g * gbytes +
                                     (nt > 1 ? Q8_PREFETCH_L2 : Q8_PREFETCH_L2_1) + pf,
                                 _MM_HINT_T1);
            }
        __m512i s0[2][GF_PAIR_NT], s1[2][GF_PAIR_NT];
        for (int t = 0; t < nt; t++) {
            s0[0][t] = s0[1][t] = _mm512_set1_epi32(qa->corr[(t * nb + b) * 8]);
            s1[0][t] = s1[1][t] = _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int j = 0; j < 8; j += 2) {
            const __m512i a0 = _mm512_xor_si512(_mm512_loadu_si512(wb + j * 64), flip);
            const __m512i a1 = _mm512_xor_si512(_mm512_loadu_si512(wb + (j + 1) * 64), flip);
            const __m512i b0 = _mm512_xor_si512(_mm512_loadu_si512(wb + gbytes + j * 64), flip);
            const __m512i b1 =
                _mm512_xor_si512(_mm512_loadu_si512(wb + gbytes + (j + 1) * 64), flip);
            for (int t = 0; t < nt; t++) {
                const int8_t *qb = q[t] + b * 32 + 4 * j;
                const __m512i x0 = _mm512_set1_epi32(load_i32(qb));
                const __m512i x1 = _mm512_set1_epi32(load_i32(qb + 4));
                s0[0][t] = _mm512_dpbusd_epi32(s0[0][t], a0, x0);
                s0[1][t] = _mm512_dpbusd_epi32(s0[1][t], b0, x0);
                s1[0][t] = _mm512_dpbusd_epi32(s1[0][t], a1, x1);
                s1[1][t] = _mm512_dpbusd_epi32(s1[1][t], b1, x1);
            }
        }
        const __m512 ws0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sw + b * 16)));
        const __m512 ws1 =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sw + gscales + b * 16)));
        for (int t = 0; t < nt; t++) {
            const __m512 d = _mm512_set1_ps(qa->d[t * nb + b]);
            const __m512i i0 = _mm512_add_epi32(s0[0][t], s1[0][t]);
            const __m512i i1 = _mm512_add_epi32(s0[1][t], s1[1][t]);
            f[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), _mm512_mul_ps(ws0, d), f[0][t]);
            f[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_mul_ps(ws1, d), f[1][t]);
        }
    }
    for (int t = 0; t < nt; t++) {
        _mm512_storeu_ps(out[0][t], f[0][t]);
        _mm512_storeu_ps(out[1][t], f[1][t]);
    }
}

TARGET_VNNI static void q8_any_pair(const void *w, const uint16_t *sw, int64_t n,
                                    const gf_q8_act *qa, int nt, float out[2][GF_MAX_NT][16])
{
    GF_PAIR_DISPATCH(q8_pair, w, sw, n, qa, nt, out)
}

_Static_assert(GF_Q8_GROUP == 16, "gf_rows_walk walks groups of 16 rows");

TARGET_VNNI static void rows_q8(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,
                                float *y)
{
    gf_rows_walk(W, a, r0, r1, y, W->cols, q8_any_group, q8_any_pair);
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

/* "GenuineIntel" in cpuid leaf 0 (ebx, edx, ecx). */
static int is_intel(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(0, &a, &b, &c, &d) && b == 0x756e6547 && d == 0x49656e69 &&
           c == 0x6c65746e;
}

void gf_kernels_fill_avx512_q8(gf_kernel_table *t, int has_vnni)
{
    pair_l2_prefetch = !is_intel();
    t->quantize_weights_q8 = quantize_weights_q8;
    t->quantize_q8 = quantize_q8;
    if (has_vnni)
        t->rows[GF_DTYPE_Q8] = rows_q8;
}
#endif
