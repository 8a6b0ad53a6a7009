/* gemm.h — prompt batches: y = W x for many tokens at once (private to
 * lib/kernels).
 *
 * The activations are packed once per call, transposed so that a vector
 * holds one k of 16 tokens (token blocks of GF_GEMM_NR, zero padded); the
 * weights are copied in tiles of a few rows x GF_GEMM_KC (widened to f32
 * for the exact kernel, as stored for bf16 pairs and int8 quads; row
 * strides padded so that the rows do not share an L1 set) and broadcast
 * one element per row and k step.  A thread computes a chunk of rows for
 * all tokens into Yt[row][token] and then transposes it into y[token][row].
 * On CPUs with AMX-INT8 (and the OS's permission) Q8 and Q4 weights take
 * the tile kernel of gemm_amx.c instead (same bits; its own activation
 * layout, results straight into y). */
#ifndef GF_GEMM_H
#define GF_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/q8_format.h"
#include "kernels/weights.h"

#define GF_GEMM_NR 32  /* tokens per block: two 16-float vectors */
#define GF_GEMM_KC 256 /* k per block: an f32 tile of 14 rows plus X fits L1 */

typedef enum gf_gemm_kind {
    GF_GEMM_F32 = 0,  /* f32 FMA: weights widened to f32 (exact) */
    GF_GEMM_BF16DOT,  /* vdpbf16ps: bf16 weights, activations rounded to bf16 */
    GF_GEMM_Q8,       /* vpdpbusd: int8 weights, activations quantized per block */
    GF_GEMM_Q8_AMX,   /* AMX-INT8 tiles (gemm_amx.c): Q8/Q4 weights, same results as GF_GEMM_Q8 */
} gf_gemm_kind;

/* Activations packed for one call (all pointers into one buffer). */
typedef struct gf_gemm_x {
    gf_gemm_kind kind;
    int64_t n_tokens, n_blocks, cols; /* n_blocks = ceil(n_tokens / 32) */
    const float *xf;     /* F32: [tb][cols][32] */
    const uint16_t *xb;  /* BF16DOT: [tb][cols/2][32][2] (cols even) */
    const uint8_t *xq;   /* Q8: [tb][cols/4][32][4], q + 128; Q8_AMX: [tile of 16][cols/32][16][32] q */
    const float *xd;     /* Q8: [tb][cols/32][32] scales; Q8_AMX: [tile of 16][cols/32][16] */
} gf_gemm_x;

/* Bytes of packed activations / per-thread scratch for a call. */
size_t gf_gemm_x_bytes(gf_gemm_kind kind, int64_t n_tokens, int64_t cols);
size_t gf_gemm_thread_bytes(int64_t n_tokens, int64_t chunk_rows);
/* Packs tokens [t0, t1) (multiples of 32 except at the end) of x. */
void gf_gemm_pack_x(gf_gemm_x *px, const float *x, int64_t t0, int64_t t1);
/* Sets up px over buf (gf_gemm_x_bytes of it) without packing. */
void gf_gemm_x_init(gf_gemm_x *px, gf_gemm_kind kind, void *buf, int64_t n_tokens, int64_t cols);

/* Computes y[t][r] for r in [r0, r1) and all tokens; `scratch` has
 * gf_gemm_thread_bytes(n_tokens, r1 - r0) bytes, 64-byte aligned. */
void gf_gemm_rows(const gf_matrix *W, const gf_gemm_x *px, int64_t r0, int64_t r1, float *y,
                  void *scratch);

/* OpenBLAS path (any CPU): rows [r0, r1) for all tokens; scratch holds
 * (r1 - r0) * cols floats; chunks of gf_blas_chunk_rows(cols) rows. */
int64_t gf_blas_chunk_rows(int64_t cols);
void gf_blas_rows(const gf_matrix *W, const float *x, int64_t n_tokens, int64_t r0, int64_t r1,
                  float *y, float *scratch);

/* Which kernels this CPU has (AVX-512 level; for Q8_AMX also the OS's
 * permission, not whether GEMFA_AMX allows it: linear_batch.c). */
int gf_gemm_available(gf_gemm_kind kind);

/* ---- AMX-INT8 (gemm_amx.c; x86-64 only) ---- */

typedef enum gf_amx_state {
    GF_AMX_ABSENT = 0, /* the CPU has no AMX-TILE + AMX-INT8 */
    GF_AMX_REFUSED,    /* it has, but the OS does not grant tile data */
    GF_AMX_READY,      /* granted for this process (Linux: ARCH_REQ_XCOMP_PERM) */
} gf_amx_state;
/* Probes once per process (and asks the kernel for the permission). */
gf_amx_state gf_amx_probe(void);

#define GF_AMX_KC 1024        /* k per chunk of the AMX kernel */
#define GF_AMX_CHUNK_ROWS 64  /* rows per work item: whole groups of 16 */
size_t gf_amx_thread_bytes(int64_t n_tokens, int64_t chunk_rows);
/* Packs the 32 tokens of pack block tb (zeros past n_tokens). */
void gf_amx_pack_x(gf_gemm_x *px, const float *x, int64_t tb);
/* Rows [r0, r1) of a Q8 or Q4 matrix, r0 at a group start (a multiple of
 * 16) and r1 too unless it is W->rows; scratch of gf_amx_thread_bytes. */
void gf_amx_rows(const gf_matrix *W, const gf_gemm_x *px, int64_t r0, int64_t r1, float *y,
                 void *scratch);

#endif
