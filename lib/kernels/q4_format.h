/* q4_format.h — GF_DTYPE_Q4: 4-bit weights, one f16 scale per block of 32
 * along a row, rows interleaved for the dot-product instructions like Q8.
 * The layout, the weight quantizer, row access and the scheme name a
 * pre-quantized checkpoint carries (loader/quantize.h).
 *
 * Values: w = d * (u - 8) with u in 0..15 (a 4-bit code) and d the block's
 * f16 scale: the representation of llama.cpp's Q4_0, 4.5 bits per weight.
 * The quantizer differs: it searches d per block (gf_q4_quantize_row) and
 * keeps Q4_0's own choice when nothing is better, so no block, hence no
 * matrix, has a larger squared error than under Q4_0.
 *
 * Layout (cols % 32 == 0).  Rows go in groups of GF_Q4_GROUP = 16 as in Q8
 * (the last group holds h = min(16, rows - g0) rows from row g0).  Inside a
 * group the bytes run by column octet (8 columns), then row, then column:
 * weight (r, c) is the nibble of byte
 *     g0*cols/2 + (c/8)*4h + (r-g0)*4 + c%4
 * that is low (bits 0-3) when c%8 < 4 and high (bits 4-7) when c%8 >= 4.
 * So a full group's 64-byte load holds 8 columns of its 16 rows: its low
 * nibbles (v & 0x0f) are exactly a Q8 column quad (4 bytes per row, 16
 * rows: what vpdpbusd / SDOT multiply by 4 bytes of a token), its high
 * nibbles ((v >> 4) & 0x0f) the next quad.  A block of 32 columns of a
 * group is 4 such loads (256 contiguous bytes).  The f16 scale of block b
 * of row r sits at index g0*(cols/32) + b*h + (r-g0) — the Q8 scale layout:
 * a group's 16 scales of a block are 32 contiguous bytes.  A matrix buffer
 * (gf_convert_bytes) is the rows*cols/2 code bytes, then, 64-byte aligned,
 * the rows*cols/32 scales. */
#ifndef GF_KERNELS_Q4_FORMAT_H
#define GF_KERNELS_Q4_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/weights.h"

#define GF_Q4_BLOCK 32
#define GF_Q4_GROUP 16

/* What gemfa quantize --type q4 writes under "gemfa.quantization": its 4-bit
 * tensors (dtype U8, shape [rows][cols/2]) are in the layout above; its
 * int8 tensors (the tied embedding / LM head, the small AltUp and LAuReL
 * matrices) in the Q8 layout of q8_format.h. */
#define GF_Q4_SCHEME                                                                             \
    "q4_s-r16: 4-bit codes u, w = d*(u-8), blocks of 32 along the input dimension, one f16 "   \
    "scale per block searched per block (never worse than q4_0); rows interleaved in groups "  \
    "of 16, 8 columns per 4 bytes as low/high nibbles; int8 tensors q8_0-r16 (libgemfa)"

static inline int64_t gf_q4_group_rows(int64_t rows, int64_t g0)
{
    return rows - g0 < GF_Q4_GROUP ? rows - g0 : GF_Q4_GROUP;
}
/* Byte holding weight (r, c); its nibble is gf_q4_nibble_shift(c). */
static inline size_t gf_q4_index(int64_t rows, int64_t cols, int64_t r, int64_t c)
{
    const int64_t g0 = r - r % GF_Q4_GROUP, h = gf_q4_group_rows(rows, g0);
    return (size_t)(g0 * (cols / 2) + (c / 8) * 4 * h + (r - g0) * 4 + c % 4);
}
static inline int gf_q4_nibble_shift(int64_t c) { return c % 8 < 4 ? 0 : 4; }
static inline size_t gf_q4_scale_index(int64_t rows, int64_t cols, int64_t r, int64_t b)
{
    const int64_t g0 = r - r % GF_Q4_GROUP, h = gf_q4_group_rows(rows, g0);
    return (size_t)(g0 * (cols / GF_Q4_BLOCK) + b * h + (r - g0));
}

/* One row of a Q4 matrix: code u (0..15) of column c, scale of block b. */
typedef struct gf_q4_row {
    const uint8_t *q;
    const uint16_t *s;
    int64_t h;
} gf_q4_row;

static inline gf_q4_row gf_q4_row_of(const gf_matrix *W, int64_t r)
{
    const gf_q4_row row = {(const uint8_t *)W->data + gf_q4_index(W->rows, W->cols, r, 0),
                           W->scales + gf_q4_scale_index(W->rows, W->cols, r, 0),
                           gf_q4_group_rows(W->rows, r - r % GF_Q4_GROUP)};
    return row;
}
static inline int gf_q4_row_code(gf_q4_row row, int64_t c)
{
    return (row.q[(c / 8) * 4 * row.h + c % 4] >> gf_q4_nibble_shift(c)) & 15;
}
static inline uint16_t gf_q4_row_scale(gf_q4_row row, int64_t b) { return row.s[b * row.h]; }

/* Row r widened to f32: d * (u - 8), one f32 rounding (exact: 11 x 4
 * bits), the same at every level (each level's widen_row calls this). */
void gf_q4_widen_row(const gf_matrix *W, int64_t r, float *out);

/* Offset of the scales in a gf_convert_bytes(GF_DTYPE_Q4, ...) buffer. */
size_t gf_q4_scales_offset(int64_t rows, int64_t cols);

/* Quantizes one row of `cols` floats (cols % 32 == 0) into codes k = u - 8
 * in -8..7 (one int8 per column) and one f16 scale per block.  Per block,
 * with m the first value of largest |x| (NaN read as 0):
 *   candidate 0 (Q4_0): d = m / -8, u = min(15, trunc(x * (1/d) + 8.5)),
 *     scale f16(d);
 *   candidates 1..22: scale f16(m / s) for s in -9, -8.75, ..., -6 and
 *     6, 6.25, ..., 8; k = clamp(round-to-nearest-even(x / scale), -8, 7);
 *   then twice: from the best codes k, the least-squares scale
 *     f16(sum(x k) / sum(k k)) and its codes as above.
 * Each candidate's error is sum (x - scale * k)^2 (scale*k exact in f32,
 * the difference rounded to f32, squares summed in f64 in a fixed tree
 * order); a candidate replaces the best only when strictly smaller, so the
 * result is Q4_0 unless something beats it.  A block with no finite
 * nonzero value gets scale 0 and codes 0.  The scalar reference of
 * gf_quantize_weights_q4 (linear.h). */
void gf_q4_quantize_row(const float *x, int64_t cols, int8_t *k, uint16_t *scales);

/* llama.cpp's Q4_0 for one row, as codes k = u - 8 and f16 scales (the
 * baseline the quantizer must not lose to; for measurements and tests). */
void gf_q4_0_quantize_row(const float *x, int64_t cols, int8_t *k, uint16_t *scales);

/* Writes columns [c0, c0 + n) of row r (c0 and n multiples of 32): `k`
 * their codes (-8..7), `s` the n/32 scales, into a Q4 matrix's buffers. */
void gf_q4_put_row(uint8_t *data, uint16_t *scales, int64_t rows, int64_t cols, int64_t r,
                   int64_t c0, int64_t n, const int8_t *k, const uint16_t *s);

/* Reads row r of a Q4 matrix back as codes k = u - 8 and scales (either
 * may be NULL). */
void gf_q4_get_row(const gf_matrix *W, int64_t r, int8_t *k, uint16_t *s);

#endif
