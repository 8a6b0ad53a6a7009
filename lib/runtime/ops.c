/* ops.c — see ops.h.  The loops over whole vectors go through the
 * vectorised helpers of vec.h (same formulas, sums of squares still in
 * double); the scalar functions (GELU, softmax) stay as plain references. */
#include "runtime/ops.h"

#include <math.h>

#include "runtime/vec.h"

void gf_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y)
{
    const gf_vec_ops *v = gf_vec();
    const double ss = v->sumsq(x, n);
    const float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    v->scale(x, inv, w, n, y);
}

float gf_rms(const float *x, int64_t n) { return (float)sqrt(gf_vec()->sumsq(x, n) / (double)n); }

void gf_match_magnitude(float *y, int64_t n, float target_rms)
{
    const gf_vec_ops *v = gf_vec();
    double ms = v->sumsq(y, n) / (double)n;
    if (ms < 1e-5) /* the floor is on the mean square, not on the root */
        ms = 1e-5;
    const float scale = (float)((double)target_rms / sqrt(ms));
    v->scale(y, scale, NULL, n, y);
}

float gf_gelu_tanh(float x)
{
    const float k = 0.7978845608028654f; /* sqrt(2/π) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

void gf_rope_angles(int64_t pos, int64_t d, double theta, float *cos_out, float *sin_out)
{
    const int64_t half = d / 2;
    for (int64_t j = 0; j < half; j++) {
        const double inv = 1.0 / pow(theta, (double)(2 * j) / (double)d);
        const double a = (double)pos * inv;
        cos_out[j] = (float)cos(a);
        sin_out[j] = (float)sin(a);
    }
}

void gf_rope_apply(float *v, int64_t d, const float *cos_t, const float *sin_t)
{
    const int64_t half = d / 2;
    for (int64_t j = 0; j < half; j++) {
        const float a = v[j], b = v[j + half];
        v[j] = a * cos_t[j] - b * sin_t[j];
        v[j + half] = b * cos_t[j] + a * sin_t[j];
    }
}

void gf_softmax(float *x, int64_t n)
{
    float mx = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

void gf_gaussian_topk(float *g, int64_t n, float z)
{
    const gf_vec_ops *v = gf_vec();
    double mean, var;
    v->mean_var(g, n, &mean, &var);
    const double std = sqrt(var / (double)n); /* population std, as HF */
    v->relu_shift(g, (float)(mean + (double)z * std), n);
}

double gf_normal_icdf(double p)
{
    /* Bisection on the CDF written with erfc: 200 halvings reach the double
     * resolution; this runs once per layer when a context is created. */
    double lo = -40.0, hi = 40.0;
    for (int i = 0; i < 200; i++) {
        const double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

float gf_sparsity_z(float sparsity)
{
    if (!(sparsity > 0.0f) || !(sparsity < 1.0f))
        return 0.0f;
    if (sparsity == 0.95f) /* HF evaluates Φ⁻¹(0.95) in float32 (spec §4.6) */
        return 1.6448533535003662f;
    return (float)gf_normal_icdf((double)sparsity);
}

void gf_softcap(float *x, int64_t n, float cap)
{
    if (!(cap > 0.0f))
        return;
    gf_vec()->softcap(x, n, cap);
}
