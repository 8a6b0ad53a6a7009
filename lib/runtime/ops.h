/* ops.h — the elementwise and per-vector operations of the Gemma 3n forward
 * pass (spec §2, §4.6, §6), written plainly in float32.  Reductions
 * (mean squares, mean/std) accumulate in double: cheap in scalar code and
 * keeps us close to the float64 reference. */
#ifndef GF_RUNTIME_OPS_H
#define GF_RUNTIME_OPS_H

#include <stdint.h>

/* y = x / sqrt(mean(x²) + eps) · w  over n entries.  w NULL = no gain (the
 * value norm).  y may alias x. */
void gf_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y);

/* sqrt(mean(x²)) over n entries. */
float gf_rms(const float *x, int64_t n);

/* Magnitude matching: y ← y · target_rms / sqrt(max(mean(y²), 1e-5)). */
void gf_match_magnitude(float *y, int64_t n, float target_rms);

/* 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))). */
float gf_gelu_tanh(float x);

/* Angles of the half-split RoPE at position `pos`: for j < d/2,
 * cos_out[j] = cos(pos·θ^(−2j/d)), sin_out[j] likewise; computed in double
 * (positions up to 32768 lose precision in float) and stored as float. */
void gf_rope_angles(int64_t pos, int64_t d, double theta, float *cos_out, float *sin_out);

/* Rotates one head vector v[0..d) in place: pairs (j, j + d/2). */
void gf_rope_apply(float *v, int64_t d, const float *cos_t, const float *sin_t);

/* In-place softmax over x[0..n), n >= 1. */
void gf_softmax(float *x, int64_t n);

/* Gaussian top-k activation sparsity: g ← max(g − (mean + z·std), 0) with
 * the population std over g[0..n). */
void gf_gaussian_topk(float *g, int64_t n, float z);

/* Φ⁻¹(p) for 0 < p < 1 (double precision).  For p = 0.95 the forward pass
 * uses the float32 constant of spec §4.6 instead (gf_sparsity_z). */
double gf_normal_icdf(double p);

/* The z multiplier for a layer's sparsity target (0 when dense). */
float gf_sparsity_z(float sparsity);

/* cap · tanh(x / cap) over x[0..n); cap <= 0 = no capping. */
void gf_softcap(float *x, int64_t n, float cap);

#endif
