/* vec.h — vectorised helpers of the forward pass around the matrix
 * products: norms, GELU, softcapping, and the attention inner loops (dot
 * products of queries with contiguous keys, softmax, weighted sums of
 * values).  One generic source (GCC vector extensions) compiled for each
 * kernel level (lib/kernels dispatch: scalar = the x86-64 baseline, AVX2,
 * AVX-512; on aarch64 the scalar level is this generic code, the ARM
 * levels take the NEON intrinsics of vec_neon.c); gf_vec() follows the
 * level gf_kernels() uses, so GEMFA_KERNEL_LEVEL lowers both.
 *
 * Numbers: everything in f32 except the sums of squares (double, as the
 * reference norms); exp is a Cephes-style polynomial (relative error
 * < 2e-7 on [-87, 88]), GELU(x) = x·σ(2u) which equals the tanh form.
 * Results differ from the plain loops of ops.c only by rounding. */
#ifndef GF_RUNTIME_VEC_H
#define GF_RUNTIME_VEC_H

#include <stdint.h>

#include "kernels/kernels.h"

typedef struct gf_vec_ops {
    const char *name;
    /* Σ x² accumulated in double. */
    double (*sumsq)(const float *x, int64_t n);
    /* Σ x and Σ (x − mean)² in double (two passes). */
    void (*mean_var)(const float *x, int64_t n, double *mean, double *var);
    /* y = x·s·w (w NULL: x·s); y may alias x. */
    void (*scale)(const float *x, float s, const float *w, int64_t n, float *y);
    /* y += a·x. */
    void (*axpy)(float *y, float a, const float *x, int64_t n);
    /* y = b + Σ_{q<k} c[q]·x[q] (k >= 1), the sum formed first; y may alias b. */
    void (*mix)(float *y, const float *b, const float *c, const float *const *x, int k, int64_t n);
    /* g = gelu_tanh(g)·u (u NULL: gelu_tanh(g)). */
    void (*gelu_mul)(float *g, const float *u, int64_t n);
    /* x = max(x − c, 0). */
    void (*relu_shift)(float *x, float c, int64_t n);
    /* x = cap·tanh(x / cap). */
    void (*softcap)(float *x, int64_t n, float cap);
    /* In-place softmax of x[0..n), n >= 1 (f32 exp). */
    void (*softmax)(float *x, int64_t n);
    /* s[h·lds + j] = q_h · k_j for h < nq, j < n_keys; q_h = q + h·d, k_j = k + j·d. */
    void (*dots)(const float *q, int nq, const float *k, int64_t n_keys, int64_t d, float *s,
                 int64_t lds);
    /* out_h += Σ_j p[h·ldp + j]·v_j for h < nq (out_h = out + h·d, v_j = v + j·d). */
    void (*accum)(const float *p, int64_t ldp, int nq, const float *v, int64_t n_keys, int64_t d,
                  float *out);
    /* dots and accum with f16 keys / values (the KV cache's GEMFA_KV_F16):
     * widened exactly, then the same sums in the same order as the f32
     * versions, so they equal those on the widened rows bit for bit. */
    void (*dots_f16)(const float *q, int nq, const uint16_t *k, int64_t n_keys, int64_t d,
                     float *s, int64_t lds);
    void (*accum_f16)(const float *p, int64_t ldp, int nq, const uint16_t *v, int64_t n_keys,
                      int64_t d, float *out);
    /* max of x[0..n), n >= 1 (the online softmax's running maximum). */
    float (*max)(const float *x, int64_t n);
    /* x = e^(x − m) in place (f32 exp, as softmax); returns Σ x. */
    float (*exp_sum)(float *x, int64_t n, float m);
} gf_vec_ops;

/* The helpers of the kernel level in use (gf_kernels()->level). */
const gf_vec_ops *gf_vec(void);
/* The helpers of one level; NULL when this CPU cannot run it. */
const gf_vec_ops *gf_vec_for_level(gf_kernel_level level);

#endif
