/* kernels_avx512_q4.c — the AVX-512 4-bit (Q4) pieces: the VNNI row kernel
 * (used only where the CPU has AVX512-VNNI) and the weight quantizer. */
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kernels_avx512.h"

/* As for Q8 (kernels_avx512_q8.c): a second prefetch into L2, 16 KB ahead
 * with 2+ tokens, 4 KB with one (16384 x 2048 matvec from DRAM 27.4 ->
 * 30.4 GB/s; E4B q4 decode 9.6 -> 10.0-10.2 tok/s; 8 and 16 KB: 9.8-10.0). */
#define Q4_PREFETCH_L2 16384
#define Q4_PREFETCH_L2_1 4096
/* Into L1, 2 KB ahead (8 blocks of a full group), as Q8 (kernels_avx512_q8.c):
 * E4B q4 decode 8.60-8.65 tok/s at 4 KB, 8.85-9.10 at 2 KB, 9.09-9.11 at
 * 1.5 KB, 8.8-9.0 at 3 KB, 8.4 at 8 KB (Intel Xeon, one run each). */
#define Q4_PREFETCH 2048

/* The Q8 kernel's scheme on the Q4 layout (kernels/q4_format.h): one
 * 64-byte load holds 8 columns of a group's 16 rows; its low nibbles are a
 * column quad as Q8 lays it out, its high nibbles the next quad, so after
 * an and / an and-not vpdpbusd multiplies each by the token's 4 bytes.
 * The high nibbles stay in place (16 u, one operation fewer than a shift
 * and a mask), so their chain starts at the Q8 correction -128 * sum(q) =
 * 16 * (-8 * sum(q)) and holds 16 times an integer: an arithmetic shift by
 * 4 divides it exactly.  With the low chain that leaves exactly
 * sum(k * q) for codes k = u - 8.  Then per block the scalar kernel's
 * fma(isum, d_w * d_x, acc): results agree with it bit for bit. */
static inline __attribute__((always_inline)) TARGET_VNNI void
q4_group(const uint8_t *w, const uint16_t *sw, int64_t n, int64_t h, const gf_q8_act *qa,
         int64_t t0, int nt, float out[GF_MAX_NT][16])
{
    const int64_t nb = n / 32, qs = 4 * h; /* bytes from one column octet to the next */
    const __m512i low = _mm512_set1_epi8(0x0f);
    const __mmask64 lm = h == 16 ? ~0ull : (1ull << (4 * h)) - 1;
    const __mmask16 sm = tail_mask(h);
    __m512 f[GF_MAX_NT];
    const int8_t *q[GF_MAX_NT];
    for (int t = 0; t < nt; t++) {
        f[t] = _mm512_setzero_ps();
        q[t] = qa->q + (t0 + t) * n;
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 4 * qs;
        for (int64_t pf = 0; pf < 4 * qs; pf += 64) {
            _mm_prefetch((const char *)wb + Q4_PREFETCH + pf, _MM_HINT_T0);
            _mm_prefetch((const char *)wb + (nt > 1 ? Q4_PREFETCH_L2 : Q4_PREFETCH_L2_1) + pf,
                         _MM_HINT_T1);
        }
        __m512i s0[GF_MAX_NT], s1[GF_MAX_NT]; /* two chains per token: low and high nibbles */
        for (int t = 0; t < nt; t++) {
            s0[t] = _mm512_setzero_si512();
            s1[t] = _mm512_set1_epi32(qa->corr[((t0 + t) * nb + b) * 8]);
        }
#pragma GCC unroll 4
        for (int o = 0; o < 4; o++) {
            const __m512i v = _mm512_maskz_loadu_epi8(lm, wb + o * qs);
            const __m512i lo = _mm512_and_si512(v, low);
            const __m512i hi = _mm512_andnot_si512(low, v); /* 16 * high nibble */
            for (int t = 0; t < nt; t++) {
                const int8_t *qb = q[t] + b * 32 + 8 * o;
                s0[t] = _mm512_dpbusd_epi32(s0[t], lo, _mm512_set1_epi32(load_i32(qb)));
                s1[t] = _mm512_dpbusd_epi32(s1[t], hi, _mm512_set1_epi32(load_i32(qb + 4)));
            }
        }
        __m512 ws = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(sm, sw + b * h));
        for (int t = 0; t < nt; t++) {
            __m512 s = _mm512_mul_ps(ws, _mm512_set1_ps(qa->d[(t0 + t) * nb + b]));
            const __m512i isum = _mm512_add_epi32(s0[t], _mm512_srai_epi32(s1[t], 4));
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), s, f[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm512_storeu_ps(out[t], f[t]);
}

/* A group for gf_rows_walk.  Full groups (all but a matrix's last when rows %
 * 16 != 0) with h a constant: the prefetches and loads unroll without bounds
 * checks (E4B q4 batch of 4: 31.8-32.6 -> 33.2-33.8 tok/s; decode ~1 %
 * faster). */
TARGET_VNNI static void q4_any_group(const void *wv, const uint16_t *sw, int64_t n, int64_t h,
                                     const gf_q8_act *qa, int64_t t0, int nt,
                                     float out[GF_MAX_NT][16])
{
    const uint8_t *w = wv;
    if (h == GF_Q4_GROUP)
        GF_GROUP_DISPATCH(q4_group, w, sw, n, GF_Q4_GROUP, qa, t0, nt, out)
    else
        GF_GROUP_DISPATCH(q4_group, w, sw, n, h, qa, t0, nt, out)
}

/* Two full groups side by side, for up to GF_PAIR_NT tokens: each token's
 * broadcast bytes serve 32 rows instead of 16.  With several tokens the
 * loads (a 4-byte broadcast per token for every 32 weights of a row) kept
 * the load ports busier than memory: one thread with the weights in L2
 * read 73 GB/s of q4 with one token and 29 with four.  The same operations
 * per row as q4_group, so the same results. */
static inline __attribute__((always_inline)) TARGET_VNNI void
q4_pair(const uint8_t *w, const uint16_t *sw, int64_t n, const gf_q8_act *qa, int nt,
        float out[2][GF_MAX_NT][16])
{
    const int64_t nb = n / 32, gbytes = GF_Q4_GROUP * n / 2, gscales = GF_Q4_GROUP * nb;
    const __m512i low = _mm512_set1_epi8(0x0f);
    __m512 f[2][GF_PAIR_NT];
    const int8_t *q[GF_PAIR_NT];
    for (int t = 0; t < nt; t++) {
        f[0][t] = f[1][t] = _mm512_setzero_ps();
        q[t] = qa->q + t * n;
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * 256;
        for (int64_t pf = 0; pf < 256; pf += 64)
            for (int g = 0; g < 2; g++) {
                _mm_prefetch((const char *)wb + g * gbytes + Q4_PREFETCH + pf, _MM_HINT_T0);
                _mm_prefetch((const char *)wb + g * gbytes +
                                 (nt > 1 ? Q4_PREFETCH_L2 : Q4_PREFETCH_L2_1) + pf,
                             _MM_HINT_T1);
            }
        __m512i s0[2][GF_PAIR_NT], s1[2][GF_PAIR_NT];
        for (int t = 0; t < nt; t++) {
            const __m512i c = _mm512_set1_epi32(qa->corr[(t * nb + b) * 8]);
            s0[0][t] = s0[1][t] = _mm512_setzero_si512();
            s1[0][t] = s1[1][t] = c;
        }
#pragma GCC unroll 4
        for (int o = 0; o < 4; o++) {
            const __m512i v0 = _mm512_loadu_si512(wb + o * 64);
            const __m512i v1 = _mm512_loadu_si512(wb + gbytes + o * 64);
            const __m512i lo0 = _mm512_and_si512(v0, low), hi0 = _mm512_andnot_si512(low, v0);
            const __m512i lo1 = _mm512_and_si512(v1, low), hi1 = _mm512_andnot_si512(low, v1);
            for (int t = 0; t < nt; t++) {
                const int8_t *qb = q[t] + b * 32 + 8 * o;
                const __m512i xl = _mm512_set1_epi32(load_i32(qb));
                const __m512i xh = _mm512_set1_epi32(load_i32(qb + 4));
                s0[0][t] = _mm512_dpbusd_epi32(s0[0][t], lo0, xl);
                s0[1][t] = _mm512_dpbusd_epi32(s0[1][t], lo1, xl);
                s1[0][t] = _mm512_dpbusd_epi32(s1[0][t], hi0, xh);
                s1[1][t] = _mm512_dpbusd_epi32(s1[1][t], hi1, xh);
            }
        }
        const __m512 ws0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sw + b * 16)));
        const __m512 ws1 =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sw + gscales + b * 16)));
        for (int t = 0; t < nt; t++) {
            const __m512 d = _mm512_set1_ps(qa->d[t * nb + b]);
            const __m512i i0 = _mm512_add_epi32(s0[0][t], _mm512_srai_epi32(s1[0][t], 4));
            const __m512i i1 = _mm512_add_epi32(s0[1][t], _mm512_srai_epi32(s1[1][t], 4));
            f[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), _mm512_mul_ps(ws0, d), f[0][t]);
            f[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_mul_ps(ws1, d), f[1][t]);
        }
    }
    for (int t = 0; t < nt; t++) {
        _mm512_storeu_ps(out[0][t], f[0][t]);
        _mm512_storeu_ps(out[1][t], f[1][t]);
    }
}

TARGET_VNNI static void q4_any_pair(const void *w, const uint16_t *sw, int64_t n,
                                    const gf_q8_act *qa, int nt, float out[2][GF_MAX_NT][16])
{
    GF_PAIR_DISPATCH(q4_pair, w, sw, n, qa, nt, out)
}

_Static_assert(GF_Q4_GROUP == 16, "gf_rows_walk walks groups of 16 rows");

TARGET_VNNI static void rows_q4(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,
                                float *y)
{
    gf_rows_walk(W, a, r0, r1, y, W->cols / 2, q4_any_group, q4_any_pair);
}

/* ---- the weight quantizer: gf_q4_quantize_row (q4_format.c) bit for bit:
 * the same candidates in the same order, each error summed in f64 in the
 * same tree order (one 8-lane vector per 8 values), the codes by the same
 * roundings (explicit-rounding intrinsics where a fused multiply-add
 * would differ). ---- */

#define RN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* tree_sum32 of q4_format.c: lanes l and l+16, l+8, l+4, l+2, l+1. */
INLINE double sum32_pd(__m512d a0, __m512d a1, __m512d a2, __m512d a3)
{
    const __m512d b = _mm512_add_pd(_mm512_add_pd(a0, a2), _mm512_add_pd(a1, a3));
    const __m256d c = _mm256_add_pd(_mm512_castpd512_pd256(b), _mm512_extractf64x4_pd(b, 1));
    const __m128d d = _mm_add_pd(_mm256_castpd256_pd128(c), _mm256_extractf128_pd(c, 1));
    return _mm_cvtsd_f64(d) + _mm_cvtsd_f64(_mm_unpackhi_pd(d, d));
}

/* sum of a*b over 32 values given as two 16-lane f32 vectors each, every
 * product taken in f64 (exact for the operands used here). */
INLINE double dot32_pd(__m512 a0, __m512 a1, __m512 b0, __m512 b1)
{
#define LO(v) _mm512_cvtps_pd(_mm512_castps512_ps256(v))
#define HI(v) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))
    return sum32_pd(_mm512_mul_pd(LO(a0), LO(b0)), _mm512_mul_pd(HI(a0), HI(b0)),
                    _mm512_mul_pd(LO(a1), LO(b1)), _mm512_mul_pd(HI(a1), HI(b1)));
#undef LO
#undef HI
}

INLINE double q4_error(__m512 v0, __m512 v1, float d, __m512i k0, __m512i k1)
{
    const __m512 vd = _mm512_set1_ps(d);
    /* d * k is exact, so a fused multiply-subtract changes nothing */
    const __m512 e0 = _mm512_sub_ps(v0, _mm512_mul_ps(vd, _mm512_cvtepi32_ps(k0)));
    const __m512 e1 = _mm512_sub_ps(v1, _mm512_mul_ps(vd, _mm512_cvtepi32_ps(k1)));
    return dot32_pd(e0, e1, e0, e1);
}

INLINE __m512i q4_codes(__m512 v, float d)
{
    __m512 r = _mm512_div_ps(v, _mm512_set1_ps(d));
    r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-8.0f)), _mm512_set1_ps(7.0f));
    return _mm512_cvt_roundps_epi32(r, RN);
}

INLINE uint16_t to_f16(float f)
{
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), RN), 0);
}
INLINE float from_f16(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }
INLINE int usable(float d) { return d != 0.0f && d - d == 0.0f; }

TARGET static void quantize_weights_q4(const float *x, int64_t n, int8_t *k, uint16_t *scales)
{
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < n / 32; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * 32), v1 = _mm512_loadu_ps(x + b * 32 + 16);
        v0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v0, v0, _CMP_ORD_Q), v0); /* NaN -> 0 */
        v1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v1, v1, _CMP_ORD_Q), v1);
        const __m512 a0 = _mm512_and_ps(v0, absmask), a1 = _mm512_and_ps(v1, absmask);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        int8_t *kb = k + b * 32;
        if (!(amax > 0.0f && amax <= FLT_MAX)) {
            scales[b] = 0;
            memset(kb, 0, 32);
            continue;
        }
        const __m512 va = _mm512_set1_ps(amax);
        const uint32_t hit = (uint32_t)_mm512_cmp_ps_mask(a0, va, _CMP_EQ_OQ) |
                             (uint32_t)_mm512_cmp_ps_mask(a1, va, _CMP_EQ_OQ) << 16;
        float xc[32];
        _mm512_storeu_ps(xc, v0);
        _mm512_storeu_ps(xc + 16, v1);
        const float m = xc[__builtin_ctz(hit)];
        /* candidate 0: Q4_0 */
        const float d0 = m / -8.0f, id = d0 != 0.0f ? 1.0f / d0 : 0.0f;
        const __m512 vid = _mm512_set1_ps(id), half = _mm512_set1_ps(8.5f);
        const __m512i c15 = _mm512_set1_epi32(15), c8 = _mm512_set1_epi32(8);
        __m512i k0 = _mm512_sub_epi32(
            _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_round_ps(
                                 _mm512_mul_round_ps(v0, vid, RN), half, RN)), c15), c8);
        __m512i k1 = _mm512_sub_epi32(
            _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_round_ps(
                                 _mm512_mul_round_ps(v1, vid, RN), half, RN)), c15), c8);
        uint16_t bs = to_f16(d0);
        double be = q4_error(v0, v1, from_f16(bs), k0, k1);
        for (int j = 0; j < 22; j++) {
            const float s = j < 13 ? -9.0f + 0.25f * (float)j : 6.0f + 0.25f * (float)(j - 13);
            const uint16_t h = to_f16(m / s);
            const float d = from_f16(h);
            if (!usable(d))
                continue;
            const __m512i c0 = q4_codes(v0, d), c1 = q4_codes(v1, d);
            const double e = q4_error(v0, v1, d, c0, c1);
            if (e < be) {
                be = e;
                bs = h;
                k0 = c0;
                k1 = c1;
            }
        }
        for (int it = 0; it < 2; it++) {
            const __m512i kk = _mm512_add_epi32(_mm512_mullo_epi32(k0, k0), _mm512_mullo_epi32(k1, k1));
            const int32_t skk = _mm512_reduce_add_epi32(kk);
            if (skk == 0)
                break;
            const double sxk = dot32_pd(v0, v1, _mm512_cvtepi32_ps(k0), _mm512_cvtepi32_ps(k1));
            const uint16_t h = to_f16((float)(sxk / (double)skk));
            const float d = from_f16(h);
            if (!usable(d))
                break;
            const __m512i c0 = q4_codes(v0, d), c1 = q4_codes(v1, d);
            const double e = q4_error(v0, v1, d, c0, c1);
            if (!(e < be))
                break;
            be = e;
            bs = h;
            k0 = c0;
            k1 = c1;
        }
        scales[b] = bs;
        _mm_storeu_si128((__m128i *)kb, _mm512_cvtepi32_epi8(k0));
        _mm_storeu_si128((__m128i *)(kb + 16), _mm512_cvtepi32_epi8(k1));
    }
}

void gf_kernels_fill_avx512_q4(gf_kernel_table *t, int has_vnni)
{
    t->quantize_weights_q4 = quantize_weights_q4;
    if (has_vnni)
        t->rows[GF_DTYPE_Q4] = rows_q4;
}
#endif
