/* kernels.h — the per-CPU-level kernel table behind gf_linear (private to
 * lib/kernels and its tests).
 *
 * Every kernel computes y[t][r] = sum_c W[r][c] * x[t][c] for rows
 * [r0, r1) and all tokens of the prepared activations, writing y with a
 * row stride of W->rows.  Each level (scalar, AVX2, AVX-512 on x86-64;
 * scalar, NEON, dot product, I8MM on aarch64) has one kernel per weight dtype; a level whose CPU lacks an optional feature (AVX512-VNNI,
 * AVX512-BF16) borrows that kernel from the level below. */
#ifndef GF_KERNELS_H
#define GF_KERNELS_H

#include <stdint.h>

#include "kernels/q8_format.h"
#include "kernels/weights.h"

/* The levels of the architecture built for, each a superset of the one
 * below (so GEMFA_KERNEL_LEVEL can lower, never raise, the level). */
typedef enum gf_kernel_level {
    GF_LEVEL_SCALAR = 0,
#if defined(__aarch64__)
    GF_LEVEL_NEON = 1,    /* Advanced SIMD with f16 conversion (every Armv8-A CPU) */
    GF_LEVEL_DOTPROD = 2, /* + SDOT/UDOT (Armv8.2 dot product, HWCAP_ASIMDDP) */
    GF_LEVEL_I8MM = 3,    /* + SMMLA (int8 matrix multiply, HWCAP2_I8MM) */
#else
    GF_LEVEL_AVX2 = 1,   /* AVX2 + FMA + F16C */
    GF_LEVEL_AVX512 = 2, /* AVX-512 F/BW/VL/DQ (+ VNNI, BF16 where present) */
#endif
    GF_LEVEL_COUNT
} gf_kernel_level;

/* Activations quantized for Q8 weights: per block of 32 along a row,
 * d = max|x| / 127 and q = round-to-nearest-even(x * (127 / max|x|)), so
 * |x - d*q| <= d/2.  `corr` serves the VNNI kernel, which multiplies
 * (w + 128) as unsigned by q: per block 8 int32, the first -128 * sum(q),
 * the rest 0, so that one 64-byte load lines up with two blocks. */
typedef struct gf_q8_act {
    int8_t *q;     /* [n_tokens][cols] */
    float *d;      /* [n_tokens][cols/32] */
    int32_t *corr; /* [n_tokens][cols/32][8] */
} gf_q8_act;

/* The activations of one gf_linear call, in the forms the kernels want. */
typedef struct gf_act {
    const float *x;   /* [n_tokens][cols] f32 */
    int64_t n_tokens, cols;
    gf_q8_act q8;     /* filled only for Q8 weights */
    /* Filled for BF16 weights when the table says bf16_pairs: x with every
     * 32 columns reordered as the 16 even then the 16 odd ones, zero padded
     * to gf_bf16_pairs_cols(cols) per token.  A 64-byte load of bf16 weights
     * then splits into even and odd f32 lanes with one shift and one and. */
    const float *xpair;
} gf_act;

int64_t gf_bf16_pairs_cols(int64_t cols);
void gf_bf16_pairs(const float *x, int64_t n_tokens, int64_t cols, float *out);

typedef void (*gf_rows_fn)(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1,
                           float *y);
/* Quantizes n values (n % 32 == 0) of one token into q, d, corr (n/32 blocks). */
typedef void (*gf_quant_fn)(const float *x, int64_t n, int8_t *q, float *d, int32_t *corr);

/* Row r of W widened to f32 (exact). */
typedef void (*gf_widen_fn)(const gf_matrix *W, int64_t r, float *out);
/* Weight quantization (gf_quantize_weights_q8 in linear.h). */
typedef void (*gf_wquant_fn)(const float *x, int64_t n, int8_t *q, uint16_t *scales);

typedef struct gf_kernel_table {
    gf_kernel_level level;
    const char *name;
    gf_rows_fn rows[4]; /* by gf_dtype */
    gf_quant_fn quantize_q8;
    gf_widen_fn widen_row;
    gf_wquant_fn quantize_weights_q8;
    int bf16_pairs; /* rows[GF_DTYPE_BF16] reads gf_act.xpair */
} gf_kernel_table;

/* The table the library uses: the best level of this CPU, lowered by
 * GEMFA_KERNEL_LEVEL=scalar|avx2|avx512 (x86-64) or scalar|neon|dotprod|i8mm
 * (aarch64), never raised above the CPU. */
const gf_kernel_table *gf_kernels(void);
/* The table of one level; NULL if this CPU cannot run it. */
const gf_kernel_table *gf_kernels_for_level(gf_kernel_level level);
/* The best level this CPU supports. */
gf_kernel_level gf_kernel_level_detected(void);
/* Test hook: make gf_kernels() return `level`; -1 if the CPU cannot. */
int gf_kernel_level_force(gf_kernel_level level);
/* Optional features of the AVX-512 level. */
int gf_cpu_has_avx512_vnni(void);
int gf_cpu_has_avx512_bf16(void);
const char *gf_kernel_level_name(gf_kernel_level level);

/* Per-level tables, filled by kernels_<level>.c (fields may be NULL = borrow). */
void gf_kernels_fill_scalar(gf_kernel_table *t);
void gf_kernels_fill_avx2(gf_kernel_table *t);
void gf_kernels_fill_avx512(gf_kernel_table *t, int has_vnni, int has_bf16);
void gf_kernels_fill_neon(gf_kernel_table *t);    /* kernels_neon.c */
void gf_kernels_fill_neon_q8(gf_kernel_table *t); /* kernels_neon_q8.c */
void gf_kernels_fill_dotprod(gf_kernel_table *t); /* kernels_neon_q8.c */
void gf_kernels_fill_i8mm(gf_kernel_table *t);    /* kernels_neon_q8.c */

#endif
