/* vec_neon.c — the runtime/vec.h helpers written for aarch64 NEON, one
 * 4-float register at a time (vec.c's 16-float generic vectors are lowered
 * by GCC to 4 registers with spills to the stack on aarch64: its softmax
 * there keeps a 736-byte frame).  Used by every ARM kernel level (NEON is
 * the Armv8-A baseline); vec.c's generic code stays the scalar level and
 * the twin the tests compare against (tests/runtime/test_vec.c).
 *
 * Same formulas as vec.c: Cephes exp (n = round-to-nearest-even of
 * x·log2 e, FRINTN here instead of the 1.5·2^23 trick: the same n), GELU
 * as x·σ(2u), tanh with the small-argument polynomial below 0.55, sums of
 * squares and variances in double.  Tails shorter than a register go
 * through a zero-padded 4-float buffer with the same vector code, so no
 * third formulation exists. */
#include "runtime/vec_neon.h"

#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(GF_SIMD_DISABLED)
#include <arm_neon.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
typedef float32x4_t f4;

AI f4 dup(float x) { return vdupq_n_f32(x); }

/* tail buffers: n < 4 floats in, zero padded */
AI f4 ld_tail(const float *p, int64_t n)
{
    float b[4] = {0, 0, 0, 0};
    memcpy(b, p, (size_t)n * sizeof(float));
    return vld1q_f32(b);
}
AI void st_tail(float *p, f4 v, int64_t n)
{
    float b[4];
    vst1q_f32(b, v);
    memcpy(p, b, (size_t)n * sizeof(float));
}

#define EXP_LO -87.3f
#define EXP_HI 88.3f
AI f4 vexp(f4 x)
{
    x = vminq_f32(vmaxq_f32(x, dup(EXP_LO)), dup(EXP_HI));
    const f4 n = vrndnq_f32(vmulq_f32(x, dup(1.44269504088896341f)));
    const int32x4_t ni = vcvtq_s32_f32(n); /* n is integral: exact */
    f4 r = vfmsq_f32(x, n, dup(0.693359375f));
    r = vfmsq_f32(r, n, dup(-2.12194440e-4f));
    f4 p = dup(1.9875691500e-4f);
    p = vfmaq_f32(dup(1.3981999507e-3f), p, r);
    p = vfmaq_f32(dup(8.3334519073e-3f), p, r);
    p = vfmaq_f32(dup(4.1665795894e-2f), p, r);
    p = vfmaq_f32(dup(1.6666665459e-1f), p, r);
    p = vfmaq_f32(dup(5.0000001201e-1f), p, r);
    p = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), dup(1.0f));
    return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), vshlq_n_s32(ni, 23)));
}

#define GELU_K 0.7978845608028654f /* sqrt(2/π) */
#define GELU_C 0.044715f
AI f4 vgelu(f4 x)
{
    const f4 u = vmulq_f32(x, vfmaq_f32(dup(1.0f), vmulq_f32(x, x), dup(GELU_C)));
    return vdivq_f32(x, vaddq_f32(dup(1.0f), vexp(vmulq_f32(u, dup(-2.0f * GELU_K)))));
}

#define TANH_SMALL 0.55f
AI f4 vtanh(f4 y)
{
    const f4 big = vsubq_f32(dup(1.0f),
                             vdivq_f32(dup(2.0f), vaddq_f32(vexp(vaddq_f32(y, y)), dup(1.0f))));
    const f4 z = vmulq_f32(y, y);
    f4 p = dup(-0.0062875933945178986f);
    p = vfmaq_f32(dup(0.021082013845443726f), p, z);
    p = vfmaq_f32(dup(-0.053855109959840775f), p, z);
    p = vfmaq_f32(dup(0.13332617282867432f), p, z);
    p = vfmaq_f32(dup(-0.33333319425582886f), p, z);
    const f4 small = vfmaq_f32(y, vmulq_f32(y, z), p);
    return vbslq_f32(vcaltq_f32(y, dup(TANH_SMALL)), small, big);
}

/* ---- reductions in double --------------------------------------------- */

AI float64x2_t lo2(f4 v) { return vcvt_f64_f32(vget_low_f32(v)); }
AI float64x2_t hi2(f4 v) { return vcvt_high_f64_f32(v); }

static double sumsq_neon(const float *x, int64_t n)
{
    float64x2_t a = vdupq_n_f64(0), b = vdupq_n_f64(0), c = vdupq_n_f64(0), d = vdupq_n_f64(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const f4 u = vld1q_f32(x + i), v = vld1q_f32(x + i + 4);
        a = vfmaq_f64(a, lo2(u), lo2(u));
        b = vfmaq_f64(b, hi2(u), hi2(u));
        c = vfmaq_f64(c, lo2(v), lo2(v));
        d = vfmaq_f64(d, hi2(v), hi2(v));
    }
    double s = vaddvq_f64(vaddq_f64(vaddq_f64(a, b), vaddq_f64(c, d)));
    for (; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

static void mean_var_neon(const float *x, int64_t n, double *mean, double *var)
{
    float64x2_t a = vdupq_n_f64(0), b = vdupq_n_f64(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const f4 u = vld1q_f32(x + i);
        a = vaddq_f64(a, lo2(u));
        b = vaddq_f64(b, hi2(u));
    }
    double s = vaddvq_f64(vaddq_f64(a, b));
    for (; i < n; i++)
        s += x[i];
    const double m = n > 0 ? s / (double)n : 0;
    const float64x2_t vm = vdupq_n_f64(m);
    a = b = vdupq_n_f64(0);
    for (i = 0; i + 4 <= n; i += 4) {
        const f4 u = vld1q_f32(x + i);
        const float64x2_t dl = vsubq_f64(lo2(u), vm), dh = vsubq_f64(hi2(u), vm);
        a = vfmaq_f64(a, dl, dl);
        b = vfmaq_f64(b, dh, dh);
    }
    double v = vaddvq_f64(vaddq_f64(a, b));
    for (; i < n; i++)
        v += ((double)x[i] - m) * ((double)x[i] - m);
    *mean = m;
    *var = v;
}

/* ---- element-wise ----------------------------------------------------- */

static void scale_neon(const float *x, float s, const float *w, int64_t n, float *y)
{
    int64_t i = 0;
    if (w) {
        for (; i + 4 <= n; i += 4)
            vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), s), vld1q_f32(w + i)));
        if (i < n)
            st_tail(y + i, vmulq_f32(vmulq_n_f32(ld_tail(x + i, n - i), s), ld_tail(w + i, n - i)),
                    n - i);
    } else {
        for (; i + 4 <= n; i += 4)
            vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(x + i), s));
        if (i < n)
            st_tail(y + i, vmulq_n_f32(ld_tail(x + i, n - i), s), n - i);
    }
}

AI void axpy_body(float *y, float a, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
        vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), vld1q_f32(x + i + 4), a));
    }
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    if (i < n)
        st_tail(y + i, vfmaq_n_f32(ld_tail(y + i, n - i), ld_tail(x + i, n - i), a), n - i);
}
static void axpy_neon(float *y, float a, const float *x, int64_t n) { axpy_body(y, a, x, n); }

/* The combination first, the base last (see vec.c). */
static void mix_neon(float *y, const float *b, const float *c, const float *const *x, int k,
                     int64_t n)
{
    for (int64_t i = 0; i < n; i += 4) {
        const int64_t m = n - i < 4 ? n - i : 4;
        f4 acc = vmulq_n_f32(m == 4 ? vld1q_f32(x[0] + i) : ld_tail(x[0] + i, m), c[0]);
        for (int q = 1; q < k; q++)
            acc = vfmaq_n_f32(acc, m == 4 ? vld1q_f32(x[q] + i) : ld_tail(x[q] + i, m), c[q]);
        if (m == 4)
            vst1q_f32(y + i, vaddq_f32(vld1q_f32(b + i), acc));
        else
            st_tail(y + i, vaddq_f32(ld_tail(b + i, m), acc), m);
    }
}

static void gelu_mul_neon(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        f4 v = vgelu(vld1q_f32(g + i));
        vst1q_f32(g + i, u ? vmulq_f32(v, vld1q_f32(u + i)) : v);
    }
    if (i < n) {
        f4 v = vgelu(ld_tail(g + i, n - i));
        st_tail(g + i, u ? vmulq_f32(v, ld_tail(u + i, n - i)) : v, n - i);
    }
}

static void relu_shift_neon(float *x, float c, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vmaxq_f32(vsubq_f32(vld1q_f32(x + i), dup(c)), dup(0.0f)));
    if (i < n)
        st_tail(x + i, vmaxq_f32(vsubq_f32(ld_tail(x + i, n - i), dup(c)), dup(0.0f)), n - i);
}

static void softcap_neon(float *x, int64_t n, float cap)
{
    const float inv = 1.0f / cap;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vmulq_n_f32(vtanh(vmulq_n_f32(vld1q_f32(x + i), inv)), cap));
    if (i < n)
        st_tail(x + i, vmulq_n_f32(vtanh(vmulq_n_f32(ld_tail(x + i, n - i), inv)), cap), n - i);
}

static float max_neon(const float *x, int64_t n)
{
    int64_t i = 0;
    float mx = x[0];
    if (n >= 4) {
        f4 m = vld1q_f32(x);
        for (i = 4; i + 4 <= n; i += 4)
            m = vmaxq_f32(m, vld1q_f32(x + i));
        mx = vmaxvq_f32(m);
    }
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

static void softmax_neon(float *x, int64_t n)
{
    int64_t i;
    const f4 vmx = dup(max_neon(x, n));
    f4 s0 = dup(0.0f), s1 = dup(0.0f);
    for (i = 0; i + 8 <= n; i += 8) {
        const f4 e0 = vexp(vsubq_f32(vld1q_f32(x + i), vmx));
        const f4 e1 = vexp(vsubq_f32(vld1q_f32(x + i + 4), vmx));
        vst1q_f32(x + i, e0);
        vst1q_f32(x + i + 4, e1);
        s0 = vaddq_f32(s0, e0);
        s1 = vaddq_f32(s1, e1);
    }
    for (; i + 4 <= n; i += 4) {
        const f4 e = vexp(vsubq_f32(vld1q_f32(x + i), vmx));
        vst1q_f32(x + i, e);
        s0 = vaddq_f32(s0, e);
    }
    float tail = 0;
    if (i < n) {
        float e[4];
        vst1q_f32(e, vexp(vsubq_f32(ld_tail(x + i, n - i), vmx)));
        for (int64_t j = 0; j < n - i; j++) {
            x[i + j] = e[j];
            tail += e[j];
        }
    }
    scale_neon(x, 1.0f / (vaddvq_f32(vaddq_f32(s0, s1)) + tail), NULL, n, x);
}

/* ---- attention inner loops -------------------------------------------- */

/* Halves widen exactly (vcvt_f32_f16); the f16 kernels are the f32 ones
 * with widening loads, so they equal them on widened rows bit for bit
 * (what vec.h promises). */
AI f4 ld_h(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
AI f4 ld_h_tail(const uint16_t *p, int64_t n)
{
    float b[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        float16_t h;
        memcpy(&h, p + i, sizeof h);
        b[i] = (float)h;
    }
    return vld1q_f32(b);
}

/* Up to 4 query heads share each key load.  Keys are f32, or f16 (`half`)
 * widened exactly by the load, so both sum the same values in the same
 * order. */
AI void dots_body(const float *q, int nq, const void *k, int half, int64_t n_keys, int64_t d,
                  float *s, int64_t lds)
{
    for (int h0 = 0; h0 < nq; h0 += 4) {
        const int nh = nq - h0 < 4 ? nq - h0 : 4;
        const float *qh = q + h0 * d;
        for (int64_t j = 0; j < n_keys; j++) {
            const float *kf = (const float *)k + j * d;
            const uint16_t *kh = (const uint16_t *)k + j * d;
            f4 acc[4] = {dup(0.0f), dup(0.0f), dup(0.0f), dup(0.0f)};
            int64_t i = 0;
            for (; i + 4 <= d; i += 4) {
                const f4 kv = half ? ld_h(kh + i) : vld1q_f32(kf + i);
                for (int h = 0; h < nh; h++)
                    acc[h] = vfmaq_f32(acc[h], vld1q_f32(qh + h * d + i), kv);
            }
            if (i < d) {
                const f4 kv = half ? ld_h_tail(kh + i, d - i) : ld_tail(kf + i, d - i);
                for (int h = 0; h < nh; h++)
                    acc[h] = vfmaq_f32(acc[h], ld_tail(qh + h * d + i, d - i), kv);
            }
            for (int h = 0; h < nh; h++)
                s[(h0 + h) * lds + j] = vaddvq_f32(acc[h]);
        }
    }
}

static void dots_neon(const float *q, int nq, const float *k, int64_t n_keys, int64_t d, float *s,
                      int64_t lds)
{
    dots_body(q, nq, k, 0, n_keys, d, s, lds);
}

static void dots_f16_neon(const float *q, int nq, const uint16_t *k, int64_t n_keys, int64_t d,
                          float *s, int64_t lds)
{
    dots_body(q, nq, k, 1, n_keys, d, s, lds);
}

static void accum_neon(const float *p, int64_t ldp, int nq, const float *v, int64_t n_keys,
                       int64_t d, float *out)
{
    for (int64_t j = 0; j < n_keys; j++) {
        const float *vj = v + j * d;
        for (int h = 0; h < nq; h++)
            axpy_body(out + h * d, p[h * ldp + j], vj, d);
    }
}

/* ---- f16 KV cache and the online softmax ----------------------------- */

/* axpy is element by element, so widening a value row in pieces changes
 * no bits. */
static void accum_f16_neon(const float *p, int64_t ldp, int nq, const uint16_t *v,
                           int64_t n_keys, int64_t d, float *out)
{
    float piece[256];
    for (int64_t j = 0; j < n_keys; j++)
        for (int64_t c0 = 0; c0 < d; c0 += 256) {
            const int64_t n = d - c0 < 256 ? d - c0 : 256;
            const uint16_t *vj = v + j * d + c0;
            int64_t i = 0;
            for (; i + 4 <= n; i += 4)
                vst1q_f32(piece + i, ld_h(vj + i));
            if (i < n) {
                float t[4];
                vst1q_f32(t, ld_h_tail(vj + i, n - i));
                memcpy(piece + i, t, (size_t)(n - i) * sizeof *t);
            }
            for (int h = 0; h < nq; h++)
                axpy_body(out + h * d + c0, p[h * ldp + j], piece, n);
        }
}

/* x = e^(x − m) in place, the exponential of softmax_neon; returns Σ x. */
static float exp_sum_neon(float *x, int64_t n, float m)
{
    const f4 vm = dup(m);
    f4 s0 = dup(0.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const f4 e = vexp(vsubq_f32(vld1q_f32(x + i), vm));
        vst1q_f32(x + i, e);
        s0 = vaddq_f32(s0, e);
    }
    float tail = 0;
    if (i < n) {
        float e[4];
        vst1q_f32(e, vexp(vsubq_f32(ld_tail(x + i, n - i), vm)));
        for (int64_t j = 0; j < n - i; j++) {
            x[i + j] = e[j];
            tail += e[j];
        }
    }
    return vaddvq_f32(s0) + tail;
}

static const gf_vec_ops ops_neon = {
    "neon",        sumsq_neon,   mean_var_neon, scale_neon,   axpy_neon, mix_neon,
    gelu_mul_neon, relu_shift_neon, softcap_neon, softmax_neon, dots_neon, accum_neon,
    dots_f16_neon, accum_f16_neon, max_neon, exp_sum_neon,
};

const gf_vec_ops *gf_vec_neon(void) { return &ops_neon; }

#else

const gf_vec_ops *gf_vec_neon(void) { return 0; }

#endif
