/* weights.h — the weight formats the kernels read: gf_dtype, gf_matrix,
 * and converting stored tensor data (F32/F16/BF16) into any of them.  Each
 * quantized format keeps its layout, quantizer and row access in its own
 * header next to its kernels (q8_format.h); this one ties them together, so
 * the loader only asks for "this tensor in that format".
 *
 * Matrices are row-major [rows = out features][cols = in features], so a
 * linear layer is y = W x.  Data either points into a mapped shard (stored
 * dtype used in place) or into a buffer owned by the model (converted). */
#ifndef GF_KERNELS_WEIGHTS_H
#define GF_KERNELS_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

typedef enum gf_dtype {
    GF_DTYPE_F32 = 0,
    GF_DTYPE_F16 = 1,
    GF_DTYPE_BF16 = 2,
    GF_DTYPE_Q8 = 3 /* int8 + f16 scales per block of 32, rows interleaved by 16 (q8_format.h) */
} gf_dtype;

typedef struct gf_matrix {
    const void *data;
    const uint16_t *scales; /* GF_DTYPE_Q8 only: f16, one per block of 32 (q8_format.h) */
    gf_dtype dtype;
    int64_t rows, cols;
} gf_matrix;

/* Bytes one row of `m` occupies in `data` (not counting Q8 scales). */
size_t gf_matrix_row_bytes(const gf_matrix *m);

/* Bytes of m->scales (0 for the formats without scales). */
size_t gf_matrix_scales_bytes(const gf_matrix *m);

/* Bytes a [rows][cols] matrix of `dtype` needs, Q8 scales included (the
 * scales follow the int8 data at a 64-byte aligned offset); SIZE_MAX on
 * overflow. */
size_t gf_convert_bytes(gf_dtype dtype, int64_t rows, int64_t cols);

/* The bytes the matrix's values occupy (data + scales, no padding): what a
 * token reads, for byte counts. */
int64_t gf_matrix_payload_bytes(gf_dtype dtype, int64_t rows, int64_t cols);

/* Points m->scales into a buffer of gf_convert_bytes(m->dtype, ...) whose
 * data is m->data (no-op for the formats without scales). */
void gf_matrix_set_scales(gf_matrix *m);

/* Converts src ([rows][cols] of src_dtype, any of F32/F16/BF16) into dst
 * (gf_convert_bytes(dst_dtype, ...) bytes, 64-byte aligned) using up to
 * n_threads threads (the caller's included).  For Q8, cols % 32 == 0.
 * Never fails: if threads cannot be started the caller does the work. */
void gf_convert_matrix(const void *src, gf_dtype src_dtype, void *dst, gf_dtype dst_dtype,
                       int64_t rows, int64_t cols, int n_threads);

/* One element of stored data widened to f32. */
float gf_stored_to_f32(const void *src, gf_dtype dtype, size_t i);

#endif
