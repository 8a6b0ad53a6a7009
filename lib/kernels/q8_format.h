/* q8_format.h — GF_DTYPE_Q8: int8 weights with one f16 scale per block of
 * 32 along a row, rows interleaved for the dot-product instructions.  The
 * layout, the weight quantizer, row access and the scheme names a
 * pre-quantized checkpoint carries (loader/quantize.h). */
#ifndef GF_KERNELS_Q8_FORMAT_H
#define GF_KERNELS_Q8_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/weights.h"

#define GF_Q8_BLOCK 32

/* GF_DTYPE_Q8 layout.  Weights are int8 with one f16 scale per block of 32
 * along a row (cols % 32 == 0), and rows go in groups of GF_Q8_GROUP (the
 * last group holds the rest: h = min(16, rows - g0) rows from row g0).
 * Inside a group the bytes run by column quad, then row: weight (r, c) is
 * at byte g0*cols + (c/4)*4h + (r-g0)*4 + c%4, and the scale of block b of
 * row r at index g0*(cols/32) + b*h + (r-g0).  So one 64-byte load holds 4
 * columns of 16 rows (what vpdpbusd multiplies by 4 bytes of one token),
 * a block of 32 columns of a group is 512 contiguous bytes, and the group's
 * 16 scales of a block are 32 contiguous bytes: the token-step kernels
 * read each weight once for any number of tokens, without shuffles.  The
 * sizes are those of a plain [rows][cols] matrix (q8_format.c converts). */
#define GF_Q8_GROUP 16

/* What gemfa quantize writes: the values of q8_0, the bytes in the
 * interleaved layout above (rows in groups of 16; the tensors keep their
 * [rows][cols] and [rows][cols/32] shapes and sizes). */
#define GF_Q8_SCHEME                                                                             \
    "q8_0-r16: int8 blocks of 32 along the input dimension, one f16 scale per block, "         \
    "symmetric; rows interleaved in groups of 16 by 4-column quads (libgemfa)"
/* Plain [rows][cols] q8_0 (libgemfa 0.1's gemfa quantize; also assumed
 * when the metadata names no scheme): interleaved at load, into memory. */
#define GF_Q8_SCHEME_ROWS                                                                        \
    "q8_0: int8 blocks of 32 along the input dimension, one f16 scale per block, symmetric"

static inline int64_t gf_q8_group_rows(int64_t rows, int64_t g0)
{
    return rows - g0 < GF_Q8_GROUP ? rows - g0 : GF_Q8_GROUP;
}
static inline size_t gf_q8_index(int64_t rows, int64_t cols, int64_t r, int64_t c)
{
    const int64_t g0 = r - r % GF_Q8_GROUP, h = gf_q8_group_rows(rows, g0);
    return (size_t)(g0 * cols + (c / 4) * 4 * h + (r - g0) * 4 + c % 4);
}
static inline size_t gf_q8_scale_index(int64_t rows, int64_t cols, int64_t r, int64_t b)
{
    const int64_t g0 = r - r % GF_Q8_GROUP, h = gf_q8_group_rows(rows, g0);
    return (size_t)(g0 * (cols / GF_Q8_BLOCK) + b * h + (r - g0));
}

/* One row of a Q8 matrix, read through the interleaved layout: weight c and
 * the scale of block b (quads 4h bytes apart, scales h apart). */
typedef struct gf_q8_row {
    const int8_t *q;
    const uint16_t *s;
    int64_t h;
} gf_q8_row;

static inline gf_q8_row gf_q8_row_of(const gf_matrix *W, int64_t r)
{
    const gf_q8_row row = {(const int8_t *)W->data + gf_q8_index(W->rows, W->cols, r, 0),
                           W->scales + gf_q8_scale_index(W->rows, W->cols, r, 0),
                           gf_q8_group_rows(W->rows, r - r % GF_Q8_GROUP)};
    return row;
}
static inline int8_t gf_q8_row_weight(gf_q8_row row, int64_t c)
{
    return row.q[(c / 4) * 4 * row.h + c % 4];
}
static inline uint16_t gf_q8_row_scale(gf_q8_row row, int64_t b) { return row.s[b * row.h]; }

/* Offset of the scales in a gf_convert_bytes(GF_DTYPE_Q8, ...) buffer. */
size_t gf_q8_scales_offset(int64_t rows, int64_t cols);

/* Quantizes one row of `cols` floats (cols % 32 == 0) into q and scales:
 * per block d = max|x| / 127, q = round(x / d) clamped to ±127, d stored
 * as f16.  The scalar reference of gf_quantize_weights_q8 (linear.h). */
void gf_q8_quantize_row(const float *x, int64_t cols, int8_t *q, uint16_t *scales);

/* Writes columns [c0, c0 + n) of row r (c0 and n multiples of 32): `q`
 * their int8 values, `s` the n/32 scales, into a Q8 matrix's buffers. */
void gf_q8_put_row(int8_t *data, uint16_t *scales, int64_t rows, int64_t cols, int64_t r,
                   int64_t c0, int64_t n, const int8_t *q, const uint16_t *s);

/* Reads row r of a Q8 matrix back as plain int8 values and scales
 * (either may be NULL). */
void gf_q8_get_row(const gf_matrix *W, int64_t r, int8_t *q, uint16_t *s);

/* A whole matrix from plain [rows][cols] int8 and [rows][cols/32] scales
 * into the interleaved layout (dst buffers of the same sizes; no overlap). */
void gf_q8_interleave(const int8_t *q, const uint16_t *s, int64_t rows, int64_t cols,
                      int8_t *dst, uint16_t *dst_scales);

#endif
