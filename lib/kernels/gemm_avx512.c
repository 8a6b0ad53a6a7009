/* gemm_avx512.c — prompt-batch kernels for AVX-512 CPUs (see gemm.h).
 *
 * Micro-kernels hold a tile of mr rows x 32 tokens in 2*mr accumulators
 * (tokens along the vector) and broadcast one weight (or a bf16 pair, an
 * int8 quad) per row and k step:
 *   f32      mr <= 14   vfmadd231ps  16 multiply-adds per instruction
 *   bf16dot  mr <= 14   vdpbf16ps    32
 *   q8       mr <= 6    vpdpbusd     64, plus per block of 32: the
 *            int32 sums scaled by d_w * d_x into f32 accumulators. */
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <immintrin.h>
#include <string.h>

#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "kernels/q4_format.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define TARGET_BF16 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,f16c")))
#define TARGET_VNNI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define ALWAYS static inline __attribute__((always_inline))

#define MR_F32 14
#define MR_Q8 6
#define NR GF_GEMM_NR
#define KC GF_GEMM_KC
/* Row strides of the weight tiles: not a multiple of 4 KB (a tile taken in
 * place from a matrix with 4 KB rows put all 14 rows in one L1 set). */
#define LDT_F32 (KC + 16)
#define LDT_BF16 (KC + 32)

static inline int32_t load_i32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- micro-kernels: c[i][0..32) (+)= sum_k w[i][k] * x[k][0..32) ---- */

/* nv (1 or 2) vectors of 16 tokens: a last block of at most 16 tokens
 * does half the work. */
ALWAYS TARGET void mk_f32(const int mr, const int nv, const float *w, int64_t ldw, const float *xp,
                          int64_t kc, float *c, int64_t ldc, int accumulate)
{
    __m512 a0[MR_F32], a1[MR_F32];
    for (int i = 0; i < mr; i++) {
        a0[i] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
        if (nv == 2)
            a1[i] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
        __m512 x0 = _mm512_load_ps(xp + k * NR), x1 = x0;
        if (nv == 2)
            x1 = _mm512_load_ps(xp + k * NR + 16);
        for (int i = 0; i < mr; i++) {
            __m512 b = _mm512_set1_ps(w[i * ldw + k]);
            a0[i] = _mm512_fmadd_ps(x0, b, a0[i]);
            if (nv == 2)
                a1[i] = _mm512_fmadd_ps(x1, b, a1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_storeu_ps(c + i * ldc, a0[i]);
        if (nv == 2)
            _mm512_storeu_ps(c + i * ldc + 16, a1[i]);
    }
}

ALWAYS TARGET_BF16 void mk_bf16(const int mr, const int nv, const uint16_t *w, int64_t ldw,
                                const uint16_t *xp, int64_t kc, float *c, int64_t ldc, int accumulate)
{
    __m512 a0[MR_F32], a1[MR_F32];
    for (int i = 0; i < mr; i++) {
        a0[i] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
        if (nv == 2)
            a1[i] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k += 2) {
        __m512bh x0 = (__m512bh)_mm512_load_si512(xp + k * NR), x1 = x0;
        if (nv == 2)
            x1 = (__m512bh)_mm512_load_si512(xp + k * NR + 32);
        for (int i = 0; i < mr; i++) {
            __m512bh b = (__m512bh)_mm512_set1_epi32(load_i32(w + i * ldw + k));
            a0[i] = _mm512_dpbf16_ps(a0[i], x0, b);
            if (nv == 2)
                a1[i] = _mm512_dpbf16_ps(a1[i], x1, b);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_storeu_ps(c + i * ldc, a0[i]);
        if (nv == 2)
            _mm512_storeu_ps(c + i * ldc + 16, a1[i]);
    }
}

/* wc[i][b] = -128 * sum of block b of row i (x enters as q + 128), the
 * start value of the block's int32 sums; dwf[i][b] the block's scale in f32
 * (both loaded by broadcast: no ALU work per block for them). */
ALWAYS TARGET_VNNI void mk_q8(const int mr, const int nv, const int8_t *w, int64_t qs,
                              const float *dwf, const int32_t *wc, const uint8_t *xq, const float *xd,
                              int64_t kc, float *c, int64_t ldc, int accumulate)
{
    __m512 f0[MR_Q8], f1[MR_Q8];
    for (int i = 0; i < mr; i++) {
        f0[i] = accumulate ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
        if (nv == 2)
            f1[i] = accumulate ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < kc / 32; b++) {
        __m512i s0[MR_Q8], s1[MR_Q8];
        for (int i = 0; i < mr; i++)
            s0[i] = s1[i] = _mm512_set1_epi32(wc[i * (KC / 32) + b]);
#pragma GCC unroll 8
        for (int64_t k = b * 32; k < b * 32 + 32; k += 4) {
            __m512i x0 = _mm512_load_si512(xq + k * NR), x1 = x0;
            if (nv == 2)
                x1 = _mm512_load_si512(xq + k * NR + 64);
            for (int i = 0; i < mr; i++) {
                __m512i wb = _mm512_set1_epi32(load_i32(w + i * 4 + (k / 4) * qs));
                s0[i] = _mm512_dpbusd_epi32(s0[i], x0, wb);
                if (nv == 2)
                    s1[i] = _mm512_dpbusd_epi32(s1[i], x1, wb);
            }
        }
        __m512 d0 = _mm512_load_ps(xd + b * NR), d1 = d0;
        if (nv == 2)
            d1 = _mm512_load_ps(xd + b * NR + 16);
        for (int i = 0; i < mr; i++) {
            __m512 dw = _mm512_set1_ps(dwf[i * (KC / 32) + b]);
            f0[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0[i]), _mm512_mul_ps(d0, dw), f0[i]);
            if (nv == 2)
                f1[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[i]), _mm512_mul_ps(d1, dw), f1[i]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_storeu_ps(c + i * ldc, f0[i]);
        if (nv == 2)
            _mm512_storeu_ps(c + i * ldc + 16, f1[i]);
    }
}

/* mr as a compile-time constant: one copy of each kernel per tile height. */
#define CASES_14(CALL)                                                                  \
    switch (mr) {                                                                       \
    case 1: CALL(1); break;  case 2: CALL(2); break;  case 3: CALL(3); break;           \
    case 4: CALL(4); break;  case 5: CALL(5); break;  case 6: CALL(6); break;           \
    case 7: CALL(7); break;  case 8: CALL(8); break;  case 9: CALL(9); break;           \
    case 10: CALL(10); break; case 11: CALL(11); break; case 12: CALL(12); break;       \
    case 13: CALL(13); break; default: CALL(14); break;                                 \
    }

TARGET static void run_f32(int mr, int nv, const float *w, int64_t ldw, const float *xp,
                           int64_t kc, float *c, int64_t ldc, int acc)
{
#define CALL_F32_2(M) mk_f32(M, 2, w, ldw, xp, kc, c, ldc, acc)
#define CALL_F32_1(M) mk_f32(M, 1, w, ldw, xp, kc, c, ldc, acc)
    if (nv == 2) {
        CASES_14(CALL_F32_2)
    } else {
        CASES_14(CALL_F32_1)
    }
}

TARGET_BF16 static void run_bf16(int mr, int nv, const uint16_t *w, int64_t ldw,
                                 const uint16_t *xp, int64_t kc, float *c, int64_t ldc, int acc)
{
#define CALL_BF16_2(M) mk_bf16(M, 2, w, ldw, xp, kc, c, ldc, acc)
#define CALL_BF16_1(M) mk_bf16(M, 1, w, ldw, xp, kc, c, ldc, acc)
    if (nv == 2) {
        CASES_14(CALL_BF16_2)
    } else {
        CASES_14(CALL_BF16_1)
    }
}

TARGET_VNNI static void run_q8(int mr, int nv, const int8_t *w, int64_t qs, const float *dwf,
                               const int32_t *wc, const uint8_t *xq, const float *xd, int64_t kc,
                               float *c, int64_t ldc, int acc)
{
#define CALL_Q8(M, V) mk_q8(M, V, w, qs, dwf, wc, xq, xd, kc, c, ldc, acc)
#define CASES_6(V)                                                                       \
    switch (mr) {                                                                        \
    case 1: CALL_Q8(1, V); break;                                                        \
    case 2: CALL_Q8(2, V); break;                                                        \
    case 3: CALL_Q8(3, V); break;                                                        \
    case 4: CALL_Q8(4, V); break;                                                        \
    case 5: CALL_Q8(5, V); break;                                                        \
    default: CALL_Q8(6, V); break;                                                       \
    }
    if (nv == 2) {
        CASES_6(2)
    } else {
        CASES_6(1)
    }
}

/* memcpy of a tile row: GCC inlines it as `rep movsq`, which was measured
 * to cost more than the multiplications on this path. */
TARGET static void copy_row(void *dst, const void *src, size_t bytes)
{
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64)
        _mm512_storeu_si512((char *)dst + i, _mm512_loadu_si512((const char *)src + i));
    if (i < bytes) {
        __mmask64 m = (__mmask64)-1 >> (64 - (bytes - i));
        _mm512_mask_storeu_epi8((char *)dst + i, m, _mm512_maskz_loadu_epi8(m, (const char *)src + i));
    }
}

/* ---- weights tile for the f32 kernel: mr rows x kc, widened ---- */

TARGET static void widen_tile(const gf_matrix *W, int64_t r, int mr, int64_t k0, int64_t kc,
                              float *tile)
{
    const int64_t K = W->cols;
    for (int i = 0; i < mr; i++) {
        float *out = tile + i * LDT_F32;
        switch (W->dtype) {
        case GF_DTYPE_F32:
            copy_row(out, (const float *)W->data + (r + i) * K + k0, (size_t)kc * 4);
            break;
        case GF_DTYPE_F16: {
            const uint16_t *p = (const uint16_t *)W->data + (r + i) * K + k0;
            int64_t k = 0;
            for (; k + 16 <= kc; k += 16)
                _mm512_storeu_ps(out + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + k))));
            for (; k < kc; k++)
                out[k] = gf_f16_to_f32(p[k]);
            break;
        }
        case GF_DTYPE_BF16: {
            const uint16_t *p = (const uint16_t *)W->data + (r + i) * K + k0;
            int64_t k = 0;
            for (; k + 16 <= kc; k += 16) {
                __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + k)));
                _mm512_storeu_si512(out + k, _mm512_slli_epi32(v, 16));
            }
            for (; k < kc; k++)
                out[k] = gf_bf16_to_f32(p[k]);
            break;
        }
        case GF_DTYPE_Q8: { /* not a path the dispatch takes (Q8 has its own kernel) */
            const int8_t *q = W->data;
            for (int64_t k = 0; k < kc; k++) {
                size_t sc = gf_q8_scale_index(W->rows, K, r + i, (k0 + k) / 32);
                out[k] = _cvtsh_ss(W->scales[sc]) * (float)q[gf_q8_index(W->rows, K, r + i, k0 + k)];
            }
            break;
        }
        case GF_DTYPE_Q4: /* not a path the dispatch takes either (unpacked to Q8) */
            for (int64_t k = 0; k < kc; k++) {
                const gf_q4_row q = gf_q4_row_of(W, r + i);
                out[k] = _cvtsh_ss(gf_q4_row_scale(q, (k0 + k) / 32)) *
                         (float)(gf_q4_row_code(q, k0 + k) - 8);
            }
            break;
        }
    }
}

/* For the h rows of a Q8 group (kernels/q8_format.h; `w` and `sw` at the
 * k block): the blocks' weight sums (vpdpbusd of ones by the weights gives
 * all 16 rows' sums of a column quad at once) and scales, once per group
 * and k block for all its tiles.  wc[r][b], dwf[r][b] with row stride
 * KC / 32. */
TARGET_VNNI static void block_sums(const int8_t *w, int64_t h, const uint16_t *sw, int64_t kc,
                                   int32_t *wc, float *dwf)
{
    const __m512i ones = _mm512_set1_epi8(1);
    const __mmask64 lm = h == 16 ? ~0ull : (1ull << (4 * h)) - 1;
    for (int64_t b = 0; b < kc / 32; b++) {
        __m512i s = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++)
            s = _mm512_dpbusd_epi32(s, ones, _mm512_maskz_loadu_epi8(lm, w + (b * 8 + j) * 4 * h));
        int32_t sums[16];
        _mm512_storeu_si512(sums, s);
        for (int i = 0; i < h; i++) {
            wc[i * (KC / 32) + b] = -128 * sums[i];
            dwf[i * (KC / 32) + b] = _cvtsh_ss(sw[b * h + i]);
        }
    }
}

/* Prefetches (non-temporal: used once) the weights the same rows need at
 * the next k block, a whole sweep over the chunk's rows ahead: a tile is
 * too short a stream for the hardware prefetcher.  (Profiles of an E4B
 * prompt show the tile copies waiting on memory for ~10% of the time; on
 * this shared machine the prefetch's gain stayed within the noise.) */
static void prefetch_next_k(const gf_matrix *W, int64_t rb, int mr, int64_t k0, size_t elem)
{
    const int64_t K = W->cols, nk0 = k0 + KC;
    if (nk0 >= K)
        return;
    const int64_t nkc = K - nk0 < KC ? K - nk0 : KC;
    if (W->dtype == GF_DTYPE_Q8 || W->dtype == GF_DTYPE_Q4) { /* the group's slab, once */
        const int64_t g0 = rb - rb % GF_Q8_GROUP, h = gf_q8_group_rows(W->rows, g0);
        if (rb != g0)
            return;
        const int half = W->dtype == GF_DTYPE_Q4; /* two codes a byte */
        const char *p = (const char *)W->data + ((g0 * K + nk0 * h) >> half);
        for (int64_t off = 0; off < (nkc * h) >> half; off += 64)
            _mm_prefetch(p + off, _MM_HINT_NTA);
        return;
    }
    for (int64_t r = rb; r < rb + mr; r++) {
        const char *p = (const char *)W->data + ((size_t)r * (size_t)K + (size_t)nk0) * elem;
        for (int64_t off = 0; off < nkc * (int64_t)elem; off += 64)
            _mm_prefetch(p + off, _MM_HINT_NTA);
    }
}

size_t gf_gemm_thread_bytes(int64_t n_tokens, int64_t chunk_rows)
{
    int64_t n_pad = (n_tokens + NR - 1) / NR * NR;
    return (size_t)(chunk_rows * n_pad) * 4 + (size_t)MR_F32 * LDT_F32 * 4 +
           2 * (size_t)GF_Q8_GROUP * (KC / 32) * 4 + (size_t)GF_Q8_GROUP * KC + 128;
}

/* Q4 through the Q8 kernel: columns [k0, k0 + kc) of the group at g0 (h
 * rows), unpacked into the Q8 layout of that slab (kernels/q4_format.h: a
 * code octet's 4h bytes hold column quad 2j in the low nibbles, quad 2j + 1
 * in the high ones) as u - 8, the Q8 value with the same block scale: 4 KB
 * at most, it stays in L1 while the group's tiles run over all tokens. */
TARGET static void unpack_q4_slab(const gf_matrix *W, int64_t g0, int64_t h, int64_t k0,
                                  int64_t kc, int8_t *out)
{
    const uint8_t *src = (const uint8_t *)W->data + (g0 * W->cols + k0 * h) / 2;
    const __mmask64 m = h == 16 ? ~0ull : (1ull << (4 * h)) - 1;
    const __m512i lo4 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8);
    for (int64_t j = 0; j < kc / 8; j++) {
        __m512i v = _mm512_maskz_loadu_epi8(m, src + j * 4 * h);
        __m512i a = _mm512_sub_epi8(_mm512_and_si512(v, lo4), eight);
        __m512i b = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), lo4), eight);
        _mm512_mask_storeu_epi8(out + (2 * j) * 4 * h, m, a);
        _mm512_mask_storeu_epi8(out + (2 * j + 1) * 4 * h, m, b);
    }
}

/* dst[j][i] = src[i][j] for a 16 x 16 block of floats (row strides ls,
 * ld): pairs, quads within 128-bit lanes, then lanes across rows. */
TARGET static void transpose16(const float *src, int64_t ls, float *dst, int64_t ld)
{
    __m512 a[16], b[16];
    for (int i = 0; i < 16; i++)
        a[i] = _mm512_loadu_ps(src + i * ls);
    for (int i = 0; i < 8; i++) { /* lane: a0 b0 a1 b1 / a2 b2 a3 b3 */
        b[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
        b[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* a[4g + j], lane L: rows 4g..4g+3 of column 4L + j */
        __m512d p0 = _mm512_castps_pd(b[4 * g]), p1 = _mm512_castps_pd(b[4 * g + 1]);
        __m512d p2 = _mm512_castps_pd(b[4 * g + 2]), p3 = _mm512_castps_pd(b[4 * g + 3]);
        a[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(p0, p2));
        a[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(p0, p2));
        a[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(p1, p3));
        a[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(p1, p3));
    }
    for (int j = 0; j < 4; j++) { /* column 4L + j: lane L of a[j], a[4 + j], a[8 + j], a[12 + j] */
        __m512 x0 = _mm512_shuffle_f32x4(a[j], a[4 + j], 0x44);
        __m512 x1 = _mm512_shuffle_f32x4(a[j], a[4 + j], 0xee);
        __m512 y0 = _mm512_shuffle_f32x4(a[8 + j], a[12 + j], 0x44);
        __m512 y1 = _mm512_shuffle_f32x4(a[8 + j], a[12 + j], 0xee);
        _mm512_storeu_ps(dst + j * ld, _mm512_shuffle_f32x4(x0, y0, 0x88));
        _mm512_storeu_ps(dst + (4 + j) * ld, _mm512_shuffle_f32x4(x0, y0, 0xdd));
        _mm512_storeu_ps(dst + (8 + j) * ld, _mm512_shuffle_f32x4(x1, y1, 0x88));
        _mm512_storeu_ps(dst + (12 + j) * ld, _mm512_shuffle_f32x4(x1, y1, 0xdd));
    }
}

/* Rows of the tile starting at rb: up to the kernel's height; a Q8 tile
 * stays inside its row group, and a group's rows split evenly (16 rows:
 * tiles of 6, 5, 5). */
static int tile_rows(const gf_matrix *W, gf_gemm_kind kind, int64_t rb, int64_t r1)
{
    if (kind != GF_GEMM_Q8)
        return (int)(r1 - rb < MR_F32 ? r1 - rb : MR_F32);
    const int64_t g0 = rb - rb % GF_Q8_GROUP, end = g0 + gf_q8_group_rows(W->rows, g0);
    const int64_t left = (end < r1 ? end : r1) - rb;
    const int64_t tiles = (left + MR_Q8 - 1) / MR_Q8;
    return (int)((left + tiles - 1) / tiles);
}

TARGET void gf_gemm_rows(const gf_matrix *W, const gf_gemm_x *px, int64_t r0, int64_t r1,
                         float *y, void *scratch)
{
    if (px->kind == GF_GEMM_Q8_AMX) {
        gf_amx_rows(W, px, r0, r1, y, scratch);
        return;
    }
    const int64_t K = W->cols, n_pad = px->n_blocks * NR, rows = r1 - r0;
    float *yt = scratch;
    float *tile = yt + rows * n_pad;
    int32_t *wc = (int32_t *)(tile + MR_F32 * LDT_F32);
    float *dwf = (float *)(wc + GF_Q8_GROUP * (KC / 32));
    int8_t *slab = (int8_t *)(((uintptr_t)(dwf + GF_Q8_GROUP * (KC / 32)) + 63) & ~(uintptr_t)63);
    int64_t slab_g0 = -1; /* the Q4 group unpacked into slab at this k0 */
    int64_t sums_g0 = -1; /* the group whose block sums wc / dwf hold at this k0 */
#define NV(tb) (px->n_tokens - (tb) * NR > 16 ? 2 : 1)
    const size_t elem = W->dtype == GF_DTYPE_F32 ? 4 : W->dtype == GF_DTYPE_Q8 ? 1 : 2;
    int mr;
    for (int64_t rb = r0; rb < r1; rb += mr) { /* the first k block of the chunk */
        mr = tile_rows(W, px->kind, rb, r1);
        prefetch_next_k(W, rb, mr, -KC, elem);
    }
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t kc = K - k0 < KC ? K - k0 : KC;
        const int acc = k0 > 0;
        slab_g0 = sums_g0 = -1;
        for (int64_t rb = r0; rb < r1; rb += mr) {
            mr = tile_rows(W, px->kind, rb, r1);
            float *c = yt + (rb - r0) * n_pad;
            prefetch_next_k(W, rb, mr, k0, elem);
            switch (px->kind) {
            case GF_GEMM_F32: {
                widen_tile(W, rb, mr, k0, kc, tile);
                for (int64_t tb = 0; tb < px->n_blocks; tb++)
                    run_f32(mr, NV(tb), tile, LDT_F32, px->xf + (tb * K + k0) * NR, kc, c + tb * NR, n_pad,
                            acc);
                break;
            }
            case GF_GEMM_BF16DOT: {
                uint16_t *t16 = (uint16_t *)tile;
                for (int i = 0; i < mr; i++)
                    copy_row(t16 + i * LDT_BF16, (const uint16_t *)W->data + (rb + i) * K + k0,
                             (size_t)kc * 2);
                for (int64_t tb = 0; tb < px->n_blocks; tb++)
                    run_bf16(mr, NV(tb), t16, LDT_BF16, px->xb + (tb * K + k0) * NR, kc, c + tb * NR, n_pad,
                             acc);
                break;
            }
            case GF_GEMM_Q8_AMX: break; /* (gemm_amx.c) */
            case GF_GEMM_Q8: {
                /* in place: the interleaved layout keeps a tile's rows together */
                const int64_t g0 = rb - rb % GF_Q8_GROUP, h = gf_q8_group_rows(W->rows, g0);
                const int8_t *wg = (const int8_t *)W->data + g0 * K + k0 * h;
                if (W->dtype == GF_DTYPE_Q4) {
                    if (slab_g0 != g0)
                        unpack_q4_slab(W, g0, h, k0, kc, slab);
                    slab_g0 = g0;
                    wg = slab;
                }
                if (sums_g0 != g0)
                    block_sums(wg, h, W->scales + g0 * (K / 32) + (k0 / 32) * h, kc, wc, dwf);
                sums_g0 = g0;
                const int64_t lo = (rb - g0) * (KC / 32);
                for (int64_t tb = 0; tb < px->n_blocks; tb++)
                    run_q8(mr, NV(tb), wg + (rb - g0) * 4, 4 * h, dwf + lo, wc + lo, px->xq + (tb * K + k0) * NR,
                           px->xd + (tb * (K / 32) + k0 / 32) * NR, kc, c + tb * NR, n_pad, acc);
                break;
            }
            }
        }
    }
    /* Yt[row][token] -> y[token][row]: 16 x 16 blocks through registers.
     * (~7-8% of an int8 prompt on the VNNI path either way, element by
     * element or so: the time is the stores into y, which is too large for
     * L2 -- the AMX kernel pays the same writing y directly.) */
    int64_t r = 0;
    for (; r + 16 <= rows; r += 16) {
        int64_t t = 0;
        for (; t + 16 <= px->n_tokens; t += 16)
            transpose16(yt + r * n_pad + t, n_pad, y + t * W->rows + r0 + r, W->rows);
        for (; t < px->n_tokens; t++)
            for (int64_t i = 0; i < 16; i++)
                y[t * W->rows + r0 + r + i] = yt[(r + i) * n_pad + t];
    }
    for (; r < rows; r++)
        for (int64_t t = 0; t < px->n_tokens; t++)
            y[t * W->rows + r0 + r] = yt[r * n_pad + t];
}

/* ---- packing the activations ---- */

size_t gf_gemm_x_bytes(gf_gemm_kind kind, int64_t n_tokens, int64_t cols)
{
    int64_t n_pad = (n_tokens + NR - 1) / NR * NR;
    switch (kind) {
    case GF_GEMM_F32: return (size_t)(n_pad * cols) * 4 + 64;
    case GF_GEMM_BF16DOT: return (size_t)(n_pad * cols) * 2 + 64;
    default: return (size_t)(n_pad * cols) + (size_t)(n_pad * (cols / 32)) * 4 + 128;
    }
}

void gf_gemm_x_init(gf_gemm_x *px, gf_gemm_kind kind, void *buf, int64_t n_tokens, int64_t cols)
{
    memset(px, 0, sizeof *px);
    px->kind = kind;
    px->n_tokens = n_tokens;
    px->n_blocks = (n_tokens + NR - 1) / NR;
    px->cols = cols;
    int64_t n_pad = px->n_blocks * NR;
    switch (kind) {
    case GF_GEMM_F32: px->xf = buf; break;
    case GF_GEMM_BF16DOT: px->xb = buf; break;
    case GF_GEMM_Q8:
    case GF_GEMM_Q8_AMX:
        px->xq = buf;
        px->xd = (const float *)((char *)buf + ((n_pad * cols + 63) & ~(int64_t)63));
        break;
    }
}

/* Packing walks each token's row in order (x is [token][k]) one k block
 * at a time, so the block of packed output stays in L1, and scatters
 * 32-bit units (a float, a bf16 pair, an int8 quad) to their token lane. */
#define PACK_KB 256

TARGET static void pack_f32_block(float *out, const float *x, int64_t n_valid, int64_t K)
{
    const __m512i lane = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(NR));
    for (int64_t k0 = 0; k0 < K; k0 += PACK_KB) {
        int64_t k1 = k0 + PACK_KB < K ? k0 + PACK_KB : K;
        for (int j = 0; j < NR; j++)
            for (int64_t k = k0; k < k1; k += 16) {
                __mmask16 m = k1 - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k1 - k)) - 1);
                __m512 v = j < n_valid ? _mm512_maskz_loadu_ps(m, x + j * K + k) : _mm512_setzero_ps();
                _mm512_mask_i32scatter_ps(out + k * NR + j, m, lane, v, 4);
            }
    }
}

/* Rounds to bf16 with vcvtne2ps2bf16 (nearest even; like vdpbf16ps it
 * treats f32 denormals as zero). */
TARGET_BF16 static void pack_bf16_block(uint16_t *out, const float *x, int64_t n_valid, int64_t K)
{
    const __m512i lane = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(NR));
    int32_t *out32 = (int32_t *)out; /* [k/2][32] pairs */
    for (int64_t k0 = 0; k0 < K; k0 += PACK_KB) {
        int64_t k1 = k0 + PACK_KB < K ? k0 + PACK_KB : K;
        for (int j = 0; j < NR; j++)
            for (int64_t k = k0; k < k1; k += 32) {
                int64_t left = k1 - k;
                __mmask16 m0 = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
                __mmask16 m1 = left >= 32 ? (__mmask16)0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
                __m512i v = _mm512_setzero_si512();
                if (j < n_valid) {
                    __m512 lo = _mm512_maskz_loadu_ps(m0, x + j * K + k);
                    __m512 hi = _mm512_maskz_loadu_ps(m1, x + j * K + k + 16);
                    v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
                }
                __mmask16 pm = left >= 32 ? (__mmask16)0xffff : (__mmask16)((1u << (left / 2)) - 1);
                _mm512_mask_i32scatter_epi32(out32 + (k / 2) * NR + j, pm, lane, v, 4);
            }
    }
}

TARGET static void pack_q8_block(uint8_t *out, float *dout, const float *x, int64_t n_valid,
                                 int64_t K, gf_quant_fn quantize)
{
    const __m256i lane = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(NR));
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    int32_t *out32 = (int32_t *)out; /* [k/4][32] quads */
    for (int64_t k0 = 0; k0 < K; k0 += PACK_KB) {
        int64_t k1 = k0 + PACK_KB < K ? k0 + PACK_KB : K;
        for (int j = 0; j < NR; j++)
            for (int64_t k = k0; k < k1; k += 32) {
                int8_t q[32];
                float d = 0;
                int32_t corr[8];
                if (j < n_valid)
                    quantize(x + j * K + k, 32, q, &d, corr);
                else
                    memset(q, 0, sizeof q);
                dout[(k / 32) * NR + j] = d;
                __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)q), bias);
                _mm256_i32scatter_epi32(out32 + (k / 4) * NR + j, lane, v, 4);
            }
    }
}

void gf_gemm_pack_x(gf_gemm_x *px, const float *x, int64_t t0, int64_t t1)
{
    const int64_t K = px->cols;
    const gf_kernel_table *kt = gf_kernels();
    for (int64_t tb = t0 / NR; tb * NR < t1; tb++) {
        const float *xs = x + tb * NR * K;
        int64_t n_valid = px->n_tokens - tb * NR < NR ? px->n_tokens - tb * NR : NR;
        switch (px->kind) {
        case GF_GEMM_F32:
            pack_f32_block((float *)px->xf + tb * K * NR, xs, n_valid, K);
            break;
        case GF_GEMM_BF16DOT:
            pack_bf16_block((uint16_t *)px->xb + tb * K * NR, xs, n_valid, K);
            break;
        case GF_GEMM_Q8:
            pack_q8_block((uint8_t *)px->xq + tb * K * NR, (float *)px->xd + tb * (K / 32) * NR, xs,
                          n_valid, K, kt->quantize_q8);
            break;
        case GF_GEMM_Q8_AMX:
            gf_amx_pack_x(px, x, tb);
            break;
        }
    }
}

int gf_gemm_available(gf_gemm_kind kind)
{
    if (gf_kernels()->level < GF_LEVEL_AVX512)
        return 0;
    switch (kind) {
    case GF_GEMM_F32: return 1;
    case GF_GEMM_BF16DOT: return gf_cpu_has_avx512_bf16();
    case GF_GEMM_Q8: return gf_cpu_has_avx512_vnni();
    case GF_GEMM_Q8_AMX: return gf_cpu_has_avx512_vnni() && gf_amx_probe() == GF_AMX_READY;
    }
    return 0;
}
#else
#include "kernels/gemm.h"
int gf_gemm_available(gf_gemm_kind kind) { (void)kind; return 0; }
gf_amx_state gf_amx_probe(void) { return GF_AMX_ABSENT; }
size_t gf_amx_thread_bytes(int64_t n, int64_t r) { (void)n; (void)r; return 0; }
size_t gf_gemm_x_bytes(gf_gemm_kind k, int64_t n, int64_t c) { (void)k; (void)n; (void)c; return 0; }
size_t gf_gemm_thread_bytes(int64_t n, int64_t r) { (void)n; (void)r; return 0; }
void gf_gemm_x_init(gf_gemm_x *px, gf_gemm_kind k, void *b, int64_t n, int64_t c) { (void)px; (void)k; (void)b; (void)n; (void)c; }
void gf_gemm_pack_x(gf_gemm_x *px, const float *x, int64_t t0, int64_t t1) { (void)px; (void)x; (void)t0; (void)t1; }
void gf_gemm_rows(const gf_matrix *W, const gf_gemm_x *px, int64_t r0, int64_t r1, float *y, void *s) { (void)W; (void)px; (void)r0; (void)r1; (void)y; (void)s; }
#endif
