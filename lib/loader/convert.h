/* convert.h — turning stored tensor data (F32/F16/BF16) into the weight
 * type the model uses: F32, F16, BF16 or Q8 (int8 blocks of 32 with one f16
 * scale each).  Large matrices are split by rows across pthreads. */
#ifndef GF_CONVERT_H
#define GF_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "loader/model.h"

/* Bytes a [rows][cols] matrix of `dtype` needs, Q8 scales included (the
 * scales follow the int8 data at a 64-byte aligned offset); SIZE_MAX on
 * overflow. */
size_t gf_convert_bytes(gf_dtype dtype, int64_t rows, int64_t cols);
/* Offset of the Q8 scales in such a buffer. */
size_t gf_q8_scales_offset(int64_t rows, int64_t cols);

/* Converts src ([rows][cols] of src_dtype, any of F32/F16/BF16) into dst
 * (gf_convert_bytes(dst_dtype, ...) bytes, 64-byte aligned) using up to
 * n_threads threads (the caller's included).  For Q8, cols % 32 == 0.
 * Never fails: if threads cannot be started the caller does the work. */
void gf_convert_matrix(const void *src, gf_dtype src_dtype, void *dst, gf_dtype dst_dtype,
                       int64_t rows, int64_t cols, int n_threads);

/* Quantizes one row of `cols` floats (cols % 32 == 0) into q and scales:
 * per block d = max|x| / 127, q = round(x / d) clamped to ±127, d stored
 * as f16.  Exposed for tests. */
void gf_q8_quantize_row(const float *x, int64_t cols, int8_t *q, uint16_t *scales);

/* One element of stored data widened to f32. */
float gf_stored_to_f32(const void *src, gf_dtype dtype, size_t i);

#endif
