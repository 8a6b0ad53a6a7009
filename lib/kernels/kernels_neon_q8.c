/* kernels_neon_q8.c — aarch64 int8 (Q8) row kernels: SDOT (Armv8.2 dot
 * product, compiled with target "arch=armv8.2-a+dotprod" and run only where HWCAP says
 * so) and a plain-NEON fallback for every Armv8-A CPU.
 *
 * They read the interleaved Q8 layout of the x86 kernels unchanged
 * (kernels/q8_format.h): in a group of 16 rows, column quad j is 64 contiguous
 * bytes, 4 bytes of row 0, then of row 1, ... of row 15.  A 16-byte NEON
 * register therefore holds 4 bytes of 4 rows: exactly what one
 *   SDOT Vacc.4S, Vw.16B, Vx.4B[0]
 * multiplies by the token's 4 bytes (broadcast) into the 4 row sums of
 * those rows, as vpdpbusd does for 16 rows with one 64-byte load.  A quad
 * is 4 registers (rows 0-3, 4-7, 8-11, 12-15), a block of 32 columns 8
 * quads = 32 SDOTs per token for 16 rows, and the 16 scales of a block are
 * 32 contiguous bytes.  So the same file format serves both architectures
 * with no conversion at load (a file pre-quantized on x86 loads on ARM and
 * the other way round), and no shuffles are needed.
 *
 * Plain NEON: SMULL/SMULL2 multiply the 16 bytes by the broadcast token
 * bytes into int16 (|w|, |x| <= 128: no overflow), SADALP adds the pairs
 * into int32, and one ADDP per block folds the pairs into the 4 row sums.
 *
 * Per row and token the operations are the scalar kernel's: exact int32
 * block sums, then fma(isum, d_w * d_x, acc) block after block; results
 * agree with kernels_scalar.c bit for bit.  A last group of h < 16 rows is
 * copied block by block into a zero-padded buffer (the weights past its end
 * must not be read). */
#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(GF_SIMD_DISABLED)
#include <arm_neon.h>
#include <string.h>

#include "kernels/convert.h"

#define INLINE static inline __attribute__((always_inline))
#define TARGET_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define MAX_NT 4
#define QUAD_BYTES (4 * GF_Q8_GROUP)                /* one column quad of a full group */
#define BLOCK_BYTES (GF_Q8_BLOCK / 4 * QUAD_BYTES) /* 512 */

/* The weights of block b of a group (8 quads x 64 bytes) and its 16 scales
 * as f32: in place for a full group, padded with zeros otherwise. */
typedef struct q8_block {
    const int8_t *w;
    float32x4_t s[4];
} q8_block;

INLINE void load_block(const int8_t *wg, const uint16_t *sg, int64_t h, int64_t b,
                       int8_t pad[BLOCK_BYTES], q8_block *out)
{
    uint16_t s16[GF_Q8_GROUP];
    if (h == GF_Q8_GROUP) {
        out->w = wg + b * BLOCK_BYTES;
        memcpy(s16, sg + b * GF_Q8_GROUP, sizeof s16);
    } else {
        memset(pad, 0, BLOCK_BYTES);
        for (int j = 0; j < GF_Q8_BLOCK / 4; j++)
            memcpy(pad + j * QUAD_BYTES, wg + (b * (GF_Q8_BLOCK / 4) + j) * 4 * h, (size_t)(4 * h));
        memset(s16, 0, sizeof s16);
        memcpy(s16, sg + b * h, (size_t)h * sizeof(uint16_t));
        out->w = pad;
    }
    for (int k = 0; k < 2; k++) {
        float16x8_t v = vreinterpretq_f16_u16(vld1q_u16(s16 + 8 * k));
        out->s[2 * k] = vcvt_f32_f16(vget_low_f16(v));
        out->s[2 * k + 1] = vcvt_high_f32_f16(v);
    }
}

/* The 16 row sums of one block for one token (x: its 32 quantized values). */
TARGET_DOT INLINE void block_sums_sdot(const int8_t *w, const int8_t *x, int32x4_t is[4])
{
    const int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
    for (int k = 0; k < 4; k++)
        is[k] = vdupq_n_s32(0);
#define GF_SDOT_QUAD(j, XV, LANE)                                                         \
    for (int k = 0; k < 4; k++)                                                          \
        is[k] = vdotq_laneq_s32(is[k], vld1q_s8(w + (j) * QUAD_BYTES + 16 * k), XV, LANE);
    GF_SDOT_QUAD(0, x0, 0)
    GF_SDOT_QUAD(1, x0, 1)
    GF_SDOT_QUAD(2, x0, 2)
    GF_SDOT_QUAD(3, x0, 3)
    GF_SDOT_QUAD(4, x1, 0)
    GF_SDOT_QUAD(5, x1, 1)
    GF_SDOT_QUAD(6, x1, 2)
    GF_SDOT_QUAD(7, x1, 3)
#undef GF_SDOT_QUAD
}

INLINE void block_sums_neon(const int8_t *w, const int8_t *x, int32x4_t is[4])
{
    int32x4_t lo[4], hi[4];
    for (int k = 0; k < 4; k++)
        lo[k] = hi[k] = vdupq_n_s32(0);
    for (int j = 0; j < GF_Q8_BLOCK / 4; j++) {
        int32_t x4;
        memcpy(&x4, x + 4 * j, 4);
        const int8x16_t xv = vreinterpretq_s8_s32(vdupq_n_s32(x4));
        for (int k = 0; k < 4; k++) {
            const int8x16_t wv = vld1q_s8(w + j * QUAD_BYTES + 16 * k);
            /* rows 4k, 4k+1 in lo (pairs of products), rows 4k+2, 4k+3 in hi */
            lo[k] = vpadalq_s16(lo[k], vmull_s8(vget_low_s8(wv), vget_low_s8(xv)));
            hi[k] = vpadalq_s16(hi[k], vmull_high_s8(wv, xv));
        }
    }
    for (int k = 0; k < 4; k++)
        is[k] = vpaddq_s32(lo[k], hi[k]);
}

/* Rows [r0, r1) of W for tokens [t0, t0 + nt): one group at a time, each
 * block's weights loaded once for all nt tokens. */
#define DEFINE_Q8_ROWS(NAME, ATTR, BLOCK_SUMS)                                                  \
    ATTR INLINE void NAME##_group(const gf_matrix *W, const gf_q8_act *qa, int64_t g0,          \
                                  int64_t t0, int nt, float out[MAX_NT][GF_Q8_GROUP])           \
    {                                                                                           \
        const int64_t n = W->cols, nb = n / GF_Q8_BLOCK;                                        \
        const int64_t h = gf_q8_group_rows(W->rows, g0);                                        \
        const int8_t *wg = (const int8_t *)W->data + g0 * n;                                    \
        const uint16_t *sg = W->scales + g0 * nb;                                               \
        int8_t pad[BLOCK_BYTES];                                                                \
        float32x4_t acc[MAX_NT][4];                                                             \
        for (int t = 0; t < nt; t++)                                                            \
            for (int k = 0; k < 4; k++)                                                         \
                acc[t][k] = vdupq_n_f32(0.0f);                                                  \
        for (int64_t b = 0; b < nb; b++) {                                                      \
            q8_block blk;                                                                       \
            load_block(wg, sg, h, b, pad, &blk);                                                \
            __builtin_prefetch(blk.w + 4096);                                                   \
            for (int t = 0; t < nt; t++) {                                                      \
                int32x4_t is[4];                                                                \
                BLOCK_SUMS(blk.w, qa->q + (t0 + t) * n + b * GF_Q8_BLOCK, is);                  \
                const float dx = qa->d[(t0 + t) * nb + b];                                      \
                for (int k = 0; k < 4; k++)                                                     \
                    acc[t][k] = vfmaq_f32(acc[t][k], vcvtq_f32_s32(is[k]),                      \
                                          vmulq_n_f32(blk.s[k], dx));                           \
            }                                                                                   \
        }                                                                                       \
        for (int t = 0; t < nt; t++)                                                            \
            for (int k = 0; k < 4; k++)                                                         \
                vst1q_f32(out[t] + 4 * k, acc[t][k]);                                           \
    }                                                                                           \
    ATTR static void NAME(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1, float *y) \
    {                                                                                           \
        float out[MAX_NT][GF_Q8_GROUP];                                                         \
        for (int64_t g0 = r0 - r0 % GF_Q8_GROUP; g0 < r1; g0 += GF_Q8_GROUP) {                  \
            const int64_t h = gf_q8_group_rows(W->rows, g0);                                    \
            for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {                              \
                int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;             \
                switch (nt) {                                                                   \
                case 1: NAME##_group(W, &a->q8, g0, t0, 1, out); break;                         \
                case 2: NAME##_group(W, &a->q8, g0, t0, 2, out); break;                         \
                case 3: NAME##_group(W, &a->q8, g0, t0, 3, out); break;                         \
                default: NAME##_group(W, &a->q8, g0, t0, 4, out); break;                        \
                }                                                                               \
                for (int64_t t = 0; t < nt; t++)                                                \
                    for (int64_t i = 0; i < h; i++)                                             \
                        if (g0 + i >= r0 && g0 + i < r1)                                        \
                            y[(t0 + t) * W->rows + g0 + i] = out[t][i];                         \
            }                                                                                   \
        }                                                                                       \
    }

DEFINE_Q8_ROWS(rows_q8_neon, , block_sums_neon)
DEFINE_Q8_ROWS(rows_q8_sdot, TARGET_DOT, block_sums_sdot)

/* I8MM: SMMLA Vd.4S, Vn.16B, Vm.16B adds the 2x2 products of two 8-byte
 * rows of Vn by two 8-byte rows of Vm.  Two tokens share every instruction:
 * Vm holds 8 columns of token a then of token b, and Vn 8 columns of two
 * weight rows, which ZIP1/ZIP2 (32-bit lanes) make from the registers of
 * quads j and j+1 (rows 4k..4k+3): [r0 q_j, r0 q_j+1, r1 q_j, r1 q_j+1] and
 * the same for r2, r3.  The result lanes [r0a, r0b, r1a, r1b] are sorted
 * back into per-token row sums by UZP1/UZP2 once per block.  Per 2 quads
 * and 16 rows: 8 ZIPs for any number of pairs, then 8 SMMLA per pair, where
 * SDOT takes 16 per 2 tokens; an odd last token goes through SDOT.  The integer sums are exact, so the
 * results are the scalar kernel's bit for bit. */
#define TARGET_MM __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))

/* Block sums of np token pairs (np = 1 or 2, constant after inlining):
 * each weight register pair is zipped once for all of them. */
TARGET_MM INLINE void block_sums_mmla(const int8_t *w, const int8_t *const x[4], int np,
                                      int32x4_t is[4][4])
{
    int32x4_t p[2][8];
    for (int q = 0; q < np; q++)
        for (int i = 0; i < 8; i++)
            p[q][i] = vdupq_n_s32(0);
    for (int j = 0; j < GF_Q8_BLOCK / 4; j += 2) {
        int8x16_t xv[2];
        for (int q = 0; q < np; q++)
            xv[q] = vcombine_s8(vld1_s8(x[2 * q] + 4 * j), vld1_s8(x[2 * q + 1] + 4 * j));
        for (int k = 0; k < 4; k++) {
            const int32x4_t a = vreinterpretq_s32_s8(vld1q_s8(w + j * QUAD_BYTES + 16 * k));
            const int32x4_t b = vreinterpretq_s32_s8(vld1q_s8(w + (j + 1) * QUAD_BYTES + 16 * k));
            const int8x16_t lo = vreinterpretq_s8_s32(vzip1q_s32(a, b));
            const int8x16_t hi = vreinterpretq_s8_s32(vzip2q_s32(a, b));
            for (int q = 0; q < np; q++) {
                p[q][2 * k] = vmmlaq_s32(p[q][2 * k], lo, xv[q]);
                p[q][2 * k + 1] = vmmlaq_s32(p[q][2 * k + 1], hi, xv[q]);
            }
        }
    }
    for (int q = 0; q < np; q++)
        for (int k = 0; k < 4; k++) {
            is[2 * q][k] = vuzp1q_s32(p[q][2 * k], p[q][2 * k + 1]);
            is[2 * q + 1][k] = vuzp2q_s32(p[q][2 * k], p[q][2 * k + 1]);
        }
}

TARGET_MM INLINE void rows_q8_mmla_group(const gf_matrix *W, const gf_q8_act *qa, int64_t g0,
                                         int64_t t0, int nt, float out[MAX_NT][GF_Q8_GROUP])
{
    const int64_t n = W->cols, nb = n / GF_Q8_BLOCK;
    const int64_t h = gf_q8_group_rows(W->rows, g0);
    const int8_t *wg = (const int8_t *)W->data + g0 * n;
    const uint16_t *sg = W->scales + g0 * nb;
    int8_t pad[BLOCK_BYTES];
    float32x4_t acc[MAX_NT][4];
    for (int t = 0; t < nt; t++)
        for (int k = 0; k < 4; k++)
            acc[t][k] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        q8_block blk;
        load_block(wg, sg, h, b, pad, &blk);
        __builtin_prefetch(blk.w + 4096);
        int32x4_t is[MAX_NT][4];
        const int8_t *x[MAX_NT];
        for (int t = 0; t < nt; t++)
            x[t] = qa->q + (t0 + t) * n + b * GF_Q8_BLOCK;
        if (nt >= 2)
            block_sums_mmla(blk.w, x, nt / 2, is);
        if (nt % 2)
            block_sums_sdot(blk.w, x[nt - 1], is[nt - 1]);
        for (int t = 0; t < nt; t++) {
            const float dx = qa->d[(t0 + t) * nb + b];
            for (int k = 0; k < 4; k++)
                acc[t][k] = vfmaq_f32(acc[t][k], vcvtq_f32_s32(is[t][k]), vmulq_n_f32(blk.s[k], dx));
        }
    }
    for (int t = 0; t < nt; t++)
        for (int k = 0; k < 4; k++)
            vst1q_f32(out[t] + 4 * k, acc[t][k]);
}

TARGET_MM static void rows_q8_mmla(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,
                                   float *y)
{
    float out[MAX_NT][GF_Q8_GROUP];
    for (int64_t g0 = r0 - r0 % GF_Q8_GROUP; g0 < r1; g0 += GF_Q8_GROUP) {
        const int64_t h = gf_q8_group_rows(W->rows, g0);
        for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {
            int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;
            switch (nt) {
            case 1: rows_q8_mmla_group(W, &a->q8, g0, t0, 1, out); break;
            case 2: rows_q8_mmla_group(W, &a->q8, g0, t0, 2, out); break;
            case 3: rows_q8_mmla_group(W, &a->q8, g0, t0, 3, out); break;
            default: rows_q8_mmla_group(W, &a->q8, g0, t0, 4, out); break;
            }
            for (int64_t t = 0; t < nt; t++)
                for (int64_t i = 0; i < h; i++)
                    if (g0 + i >= r0 && g0 + i < r1)
                        y[(t0 + t) * W->rows + g0 + i] = out[t][i];
        }
    }
}

void gf_kernels_fill_neon_q8(gf_kernel_table *t) { t->rows[GF_DTYPE_Q8] = rows_q8_neon; }

void gf_kernels_fill_dotprod(gf_kernel_table *t) { t->rows[GF_DTYPE_Q8] = rows_q8_sdot; }

void gf_kernels_fill_i8mm(gf_kernel_table *t) { t->rows[GF_DTYPE_Q8] = rows_q8_mmla; }
#endif
