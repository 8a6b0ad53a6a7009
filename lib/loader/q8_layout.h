/* q8_layout.h — moving int8 weights between plain rows and the interleaved
 * GF_DTYPE_Q8 layout (loader/model.h). */
#ifndef GF_Q8_LAYOUT_H
#define GF_Q8_LAYOUT_H

#include <stdint.h>

#include "loader/model.h"

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
