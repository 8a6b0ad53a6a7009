/* vec.c — see vec.h.  The bodies below are written once with 16-float GCC
 * vectors and inlined into one function per level; each level's target
 * attribute decides the instructions (x86-64 baseline: 4 SSE registers per
 * vector; AVX2: 2; AVX-512: 1).  Tails shorter than a vector run a scalar
 * loop with the same formulas. */
#include "runtime/vec.h"

#include "runtime/vec_neon.h"

#include <math.h>
#include <string.h>

#include "kernels/convert.h"

/* The 64-byte vectors only live inside always-inlined helpers, never
 * across a call, so the ABI note about passing them is moot. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
/* Unaligned, aliasing-safe views for loads and stores. */
typedef float v16f_u __attribute__((vector_size(64), aligned(4), may_alias));
typedef float v8f_u __attribute__((vector_size(32), aligned(4), may_alias));

#define AI static inline __attribute__((always_inline))

AI v16f ld(const float *p) { return *(const v16f_u *)p; }
AI void st(float *p, v16f v) { *(v16f_u *)p = v; }
AI v16f splat(float x) { return (v16f){0} + x; }
/* 16 halves widened to f32, exactly, with integer operations only (no F16C
 * needed, so every level runs the same code): the 15 low bits shifted into
 * an f32's exponent/mantissa and scaled by 2^112 rebase the exponent and
 * normalise subnormals; exponent 31 (inf/NaN) gets the f32 all-ones
 * exponent; the sign is put back. */
typedef uint16_t v16h_u __attribute__((vector_size(32), aligned(2), may_alias));
AI v16f ldh(const uint16_t *p)
{
    const v16i h = __builtin_convertvector(*(const v16h_u *)p, v16i);
    const v16i e = h & 0x7c00;
    const v16f f = (v16f)((h & 0x7fff) << 13) * 0x1p112f;
    const v16i inf = ((e + 0x400) >> 15) * 0x7f800000; /* e == 0x7c00: all-ones exponent */
    return (v16f)((v16i)f | inf | ((h & 0x8000) << 16));
}
/* How a level widens 16 halves: ldh everywhere, vcvtph2ps where the level
 * has it (the same values: both are exact).  Passed as a constant function
 * pointer, so each level's function inlines its own. */
typedef v16f (*widen16)(const uint16_t *);
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <immintrin.h>
static inline __attribute__((always_inline, target("avx512f"))) v16f ldh_avx512(const uint16_t *p)
{
    return (v16f)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
#endif
/* Element i of a key/value row: f32 or f16 (`f16` a constant per caller). */
AI v16f ldkv(widen16 widen, int f16, const void *p, int64_t i)
{
    return f16 ? widen((const uint16_t *)p + i) : ld((const float *)p + i);
}
AI float getkv(int f16, const void *p, int64_t i)
{
    return f16 ? gf_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}
AI v16f vsel(v16i m, v16f a, v16f b) /* m ? a : b, m all-ones or zero per lane */
{
    return (v16f)(((v16i)a & m) | ((v16i)b & ~m));
}
/* a < b as a lane mask.  `nat` (a constant per level): 1 where 64-byte
 * vectors are native (AVX-512), a real compare; 0 elsewhere, the sign of
 * a − b spread by an arithmetic shift, because GCC lowers a comparison of
 * 64-byte vectors lane by lane (vcomiss, cmov) on targets without one
 * (baseline, AVX2), which made every clamp and select there ~10x slower than
 * the arithmetic around it.  Equal zeros of opposite sign may compare either
 * way; max/min do not care. */
AI v16i vlt(int nat, v16f a, v16f b) { return nat ? (a < b) : (v16i)(a - b) >> 31; }
AI v16f vmax(int nat, v16f a, v16f b) { return vsel(vlt(nat, b, a), a, b); }
AI v16f vmin(int nat, v16f a, v16f b) { return vsel(vlt(nat, a, b), a, b); }
AI v16f vabs(v16f a) { return (v16f)((v16i)a & 0x7fffffff); }
typedef float v4f __attribute__((vector_size(16)));
AI float hsum(v16f v) /* a tree: halves added, then quarters */
{
    v8f a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
            __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v4f b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}
AI float hmax(v16f v)
{
    float m = v[0];
    for (int i = 1; i < 16; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* e^x, Cephes expf: x = n·ln2 + r, |r| <= ln2/2, degree-6 polynomial,
 * 2^n through the exponent bits.  x is clamped to [-87.3, 88.3]. */
#define EXP_LO -87.3f
#define EXP_HI 88.3f
AI v16f vexp(int nat, v16f x)
{
    x = vmin(nat, vmax(nat, x, splat(EXP_LO)), splat(EXP_HI));
    const v16f magic = splat(12582912.0f); /* 1.5·2^23: adding it rounds to an integer */
    v16f t = x * 1.44269504088896341f + magic;
    v16f n = t - magic;
    v16i ni = (v16i)t - (v16i)magic;
    v16f r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    v16f p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return (v16f)((v16i)p + (ni << 23));
}
AI float sexp(float x) /* the same formula on one value */
{
    x = x < EXP_LO ? EXP_LO : (x > EXP_HI ? EXP_HI : x);
    const float n = rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return ldexpf(p, (int)n);
}

#define GELU_K 0.7978845608028654f /* sqrt(2/π) */
#define GELU_C 0.044715f
/* 0.5·x·(1 + tanh(u)) = x / (1 + e^(−2u)), u = k·(x + c·x³). */
AI v16f vgelu(int nat, v16f x)
{
    return x / (1.0f + vexp(nat, -2.0f * GELU_K * (x + GELU_C * x * x * x)));
}
AI float sgelu(float x) { return x / (1.0f + sexp(-2.0f * GELU_K * (x + GELU_C * x * x * x))); }
/* tanh(y) = 1 − 2 / (e^(2y) + 1) loses the low digits of small y to the
 * cancellation (absolute error ~1 ulp of 1, so relative 6e-8/|y|); below
 * |y| < 0.55 an odd polynomial y + y³·P(y²) takes over (P: degree 4,
 * weighted least-squares fit of (tanh y − y)/y³ on [0, 0.55]; ~1 ulp
 * relative in f32).  Both are computed, a mask picks one. */
#define TANH_SMALL 0.55f
#define TANH_P0 -0.33333319425582886f
#define TANH_P1 0.13332617282867432f
#define TANH_P2 -0.053855109959840775f
#define TANH_P3 0.021082013845443726f
#define TANH_P4 -0.0062875933945178986f
AI v16f vtanh(int nat, v16f y)
{
    const v16f big = 1.0f - 2.0f / (vexp(nat, 2.0f * y) + 1.0f);
    const v16f z = y * y;
    v16f p = splat(TANH_P4);
    p = p * z + TANH_P3;
    p = p * z + TANH_P2;
    p = p * z + TANH_P1;
    p = p * z + TANH_P0;
    const v16f small = y + y * z * p;
    return vsel(vlt(nat, vabs(y), splat(TANH_SMALL)), small, big);
}
AI float stanh(float y)
{
    if (fabsf(y) >= TANH_SMALL)
        return 1.0f - 2.0f / (sexp(2.0f * y) + 1.0f);
    const float z = y * y;
    float p = TANH_P4;
    p = p * z + TANH_P3;
    p = p * z + TANH_P2;
    p = p * z + TANH_P1;
    p = p * z + TANH_P0;
    return y + y * z * p;
}

AI double sumsq_body(const float *x, int64_t n)
{
    v8d a = {0}, b = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v8d lo = __builtin_convertvector(*(const v8f_u *)(x + i), v8d);
        v8d hi = __builtin_convertvector(*(const v8f_u *)(x + i + 8), v8d);
        a += lo * lo;
        b += hi * hi;
    }
    a += b;
    double s = 0;
    for (int k = 0; k < 8; k++)
        s += a[k];
    for (; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

AI void mean_var_body(const float *x, int64_t n, double *mean, double *var)
{
    v8d a = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        a += __builtin_convertvector(*(const v8f_u *)(x + i), v8d);
    double s = 0;
    for (int k = 0; k < 8; k++)
        s += a[k];
    for (; i < n; i++)
        s += x[i];
    const double m = n > 0 ? s / (double)n : 0;
    v8d q = {0};
    for (i = 0; i + 8 <= n; i += 8) {
        v8d d = __builtin_convertvector(*(const v8f_u *)(x + i), v8d) - m;
        q += d * d;
    }
    double v = 0;
    for (int k = 0; k < 8; k++)
        v += q[k];
    for (; i < n; i++)
        v += ((double)x[i] - m) * ((double)x[i] - m);
    *mean = m;
    *var = v;
}

AI void scale_body(const float *x, float s, const float *w, int64_t n, float *y)
{
    int64_t i = 0;
    if (w) {
        for (; i + 16 <= n; i += 16)
            st(y + i, ld(x + i) * s * ld(w + i));
        for (; i < n; i++)
            y[i] = x[i] * s * w[i];
    } else {
        for (; i + 16 <= n; i += 16)
            st(y + i, ld(x + i) * s);
        for (; i < n; i++)
            y[i] = x[i] * s;
    }
}

AI void axpy_body(float *y, float a, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        st(y + i, ld(y + i) + a * ld(x + i));
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* The combination is summed first and the base added last: rounding at the
 * scale of the sum, then once at the scale of the result (k axpy passes
 * onto the base round k times at the result's scale; issue 12 measured the
 * AltUp prediction ~1.5x less accurate than a float32 evaluation that way). */
AI void mix_k(float *y, const float *b, const float *c, const float *const *x, const int k,
              int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16f acc = c[0] * ld(x[0] + i);
        for (int q = 1; q < k; q++)
            acc += c[q] * ld(x[q] + i);
        st(y + i, ld(b + i) + acc);
    }
    for (; i < n; i++) {
        float acc = c[0] * x[0][i];
        for (int q = 1; q < k; q++)
            acc += c[q] * x[q][i];
        y[i] = b[i] + acc;
    }
}
/* k as a constant (AltUp has 4 streams): with a variable trip count GCC
 * kept the AVX2 accumulator (two registers) on the stack. */
AI void mix_body(float *y, const float *b, const float *c, const float *const *x, int k, int64_t n)
{
    switch (k) {
    case 1: mix_k(y, b, c, x, 1, n); break;
    case 2: mix_k(y, b, c, x, 2, n); break;
    case 3: mix_k(y, b, c, x, 3, n); break;
    case 4: mix_k(y, b, c, x, 4, n); break;
    default: mix_k(y, b, c, x, k, n); break;
    }
}

AI void gelu_mul_body(int nat, float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    if (u) {
        for (; i + 16 <= n; i += 16)
            st(g + i, vgelu(nat, ld(g + i)) * ld(u + i));
        for (; i < n; i++)
            g[i] = sgelu(g[i]) * u[i];
    } else {
        for (; i + 16 <= n; i += 16)
            st(g + i, vgelu(nat, ld(g + i)));
        for (; i < n; i++)
            g[i] = sgelu(g[i]);
    }
}

AI void relu_shift_body(int nat, float *x, float c, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        st(x + i, vmax(nat, ld(x + i) - c, splat(0.0f)));
    for (; i < n; i++) {
        const float v = x[i] - c;
        x[i] = v > 0.0f ? v : 0.0f;
    }
}

AI void softcap_body(int nat, float *x, int64_t n, float cap)
{
    const float inv = 1.0f / cap;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        st(x + i, cap * vtanh(nat, ld(x + i) * inv));
    for (; i < n; i++)
        x[i] = cap * stanh(x[i] * inv);
}

AI void softmax_body(int nat, float *x, int64_t n)
{
    int64_t i = 0;
    float mx = x[0];
    if (n >= 16) {
        v16f m = ld(x);
        for (i = 16; i + 16 <= n; i += 16)
            m = vmax(nat, m, ld(x + i));
        mx = hmax(m);
    }
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    v16f s = {0};
    float tail = 0;
    for (i = 0; i + 16 <= n; i += 16) {
        v16f e = vexp(nat, ld(x + i) - mx);
        st(x + i, e);
        s += e;
    }
    for (; i < n; i++) {
        x[i] = sexp(x[i] - mx);
        tail += x[i];
    }
    const float inv = 1.0f / (hsum(s) + tail);
    scale_body(x, inv, NULL, n, x);
}

/* q·k of nk keys (a constant, 1-4) with nh query heads (1-4): the nk x nh
 * sums stay in registers, each key chunk loaded once for all heads.  Per
 * (head, key) the sum is the same at every tiling: lane-wise over the
 * 16-float chunks in order, then hsum, then the scalar tail. */
AI void dots_tile(widen16 widen, int f16, const int nh, const int nk, const float *qh,
                  const void *k, int64_t d, float *s, int64_t lds)
{
    const size_t esz = f16 ? 2 : 4;
    v16f acc[4][4];
    float tail[4][4];
    for (int j = 0; j < nk; j++)
        for (int h = 0; h < nh; h++) {
            acc[j][h] = (v16f){0};
            tail[j][h] = 0;
        }
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) {
        v16f kv[4];
        for (int j = 0; j < nk; j++)
            kv[j] = ldkv(widen, f16, (const unsigned char *)k + (size_t)(j * d) * esz, i);
        for (int h = 0; h < nh; h++) {
            const v16f qv = ld(qh + h * d + i);
            for (int j = 0; j < nk; j++)
                acc[j][h] += qv * kv[j];
        }
    }
    for (; i < d; i++)
        for (int j = 0; j < nk; j++) {
            const float ki = getkv(f16, (const unsigned char *)k + (size_t)(j * d) * esz, i);
            for (int h = 0; h < nh; h++) /* fmaf: contracted the same whatever gets vectorised */
                tail[j][h] = fmaf(qh[h * d + i], ki, tail[j][h]);
        }
    for (int j = 0; j < nk; j++)
        for (int h = 0; h < nh; h++)
            s[h * lds + j] = hsum(acc[j][h]) + tail[j][h];
}

AI void dots_heads(widen16 widen, int f16, const int nh, const int keys, const float *qh,
                   const void *k, int64_t n_keys, int64_t d, float *s, int64_t lds)
{
    const size_t esz = f16 ? 2 : 4;
    int64_t j = 0;
    for (; j + keys <= n_keys; j += keys)
        dots_tile(widen, f16, nh, keys, qh, (const unsigned char *)k + (size_t)(j * d) * esz, d,
                  s + j, lds);
    for (; j < n_keys; j++)
        dots_tile(widen, f16, nh, 1, qh, (const unsigned char *)k + (size_t)(j * d) * esz, d,
                  s + j, lds);
}

/* Up to 4 query heads share each key load, and `keys` keys (a constant per
 * level: as many as its registers hold) go together.  Keys f32 or f16
 * (`f16` constant): the same sums in the same order, so f16 keys give
 * exactly the f32 result on the widened keys. */
AI void dots_body(widen16 widen, int f16, const int keys, const float *q, int nq, const void *k,
                  int64_t n_keys, int64_t d, float *s, int64_t lds)
{
    for (int h0 = 0; h0 < nq; h0 += 4) {
        const float *qh = q + h0 * d;
        float *sh = s + h0 * lds;
        switch (nq - h0 < 4 ? nq - h0 : 4) {
        case 1: dots_heads(widen, f16, 1, keys, qh, k, n_keys, d, sh, lds); break;
        case 2: dots_heads(widen, f16, 2, keys, qh, k, n_keys, d, sh, lds); break;
        case 3: dots_heads(widen, f16, 3, keys, qh, k, n_keys, d, sh, lds); break;
        default: dots_heads(widen, f16, 4, keys, qh, k, n_keys, d, sh, lds); break;
        }
    }
}

/* out_h += Σ_j p_hj·v_j over nv 16-float chunks of the head dim from i0 for
 * nh heads (constants): those outputs stay in registers over all keys, and
 * each value chunk is loaded once for the heads.  Every output element sums
 * over the keys in order, as at every other tiling. */
AI void accum_strip(widen16 widen, int f16, const int nh, const int nv, const float *p,
                    int64_t ldp, const void *v, int64_t n_keys, int64_t d, int64_t i0, float *out)
{
    const size_t esz = f16 ? 2 : 4;
    v16f o[4][4];
    for (int h = 0; h < nh; h++)
        for (int u = 0; u < nv; u++)
            o[h][u] = ld(out + h * d + i0 + 16 * u);
    for (int64_t j = 0; j < n_keys; j++) {
        const void *vj = (const unsigned char *)v + (size_t)(j * d) * esz;
        v16f x[4];
        for (int u = 0; u < nv; u++)
            x[u] = ldkv(widen, f16, vj, i0 + 16 * u);
        for (int h = 0; h < nh; h++) {
            const float ph = p[h * ldp + j];
            for (int u = 0; u < nv; u++)
                o[h][u] += ph * x[u];
        }
    }
    for (int h = 0; h < nh; h++)
        for (int u = 0; u < nv; u++)
            st(out + h * d + i0 + 16 * u, o[h][u]);
}

AI void accum_heads(widen16 widen, int f16, const int nh, const int strip, const float *p,
                    int64_t ldp, const void *v, int64_t n_keys, int64_t d, float *out)
{
    const size_t esz = f16 ? 2 : 4;
    int64_t i = 0;
    for (; i + 16 * strip <= d; i += 16 * strip)
        accum_strip(widen, f16, nh, strip, p, ldp, v, n_keys, d, i, out);
    for (; i + 16 <= d; i += 16)
        accum_strip(widen, f16, nh, 1, p, ldp, v, n_keys, d, i, out);
    for (; i < d; i++)
        for (int64_t j = 0; j < n_keys; j++) {
            const float x = getkv(f16, (const unsigned char *)v + (size_t)(j * d) * esz, i);
            for (int h = 0; h < nh; h++)
                out[h * d + i] = fmaf(p[h * ldp + j], x, out[h * d + i]);
        }
}

/* out_h += Σ_j p_hj·v_j, heads 4 at a time, the head dim in strips of
 * `strip` vectors (a constant per level). */
AI void accum_body(widen16 widen, int f16, const int strip, const float *p, int64_t ldp, int nq,
                   const void *v, int64_t n_keys, int64_t d, float *out)
{
    for (int h0 = 0; h0 < nq; h0 += 4) {
        const float *ph = p + h0 * ldp;
        float *oh = out + h0 * d;
        switch (nq - h0 < 4 ? nq - h0 : 4) {
        case 1: accum_heads(widen, f16, 1, strip, ph, ldp, v, n_keys, d, oh); break;
        case 2: accum_heads(widen, f16, 2, strip, ph, ldp, v, n_keys, d, oh); break;
        case 3: accum_heads(widen, f16, 3, strip, ph, ldp, v, n_keys, d, oh); break;
        default: accum_heads(widen, f16, 4, strip, ph, ldp, v, n_keys, d, oh); break;
        }
    }
}

/* max of x[0..n), n >= 1. */
AI float max_body(int nat, const float *x, int64_t n)
{
    int64_t i = 0;
    float mx = x[0];
    if (n >= 16) {
        v16f m = ld(x);
        for (i = 16; i + 16 <= n; i += 16)
            m = vmax(nat, m, ld(x + i));
        mx = hmax(m);
    }
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* x = e^(x − m) in place; returns the sum (lanes, then the tail). */
AI float exp_sum_body(int nat, float *x, int64_t n, float m)
{
    v16f s = {0};
    float tail = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16f e = vexp(nat, ld(x + i) - m);
        st(x + i, e);
        s += e;
    }
    for (; i < n; i++) {
        x[i] = sexp(x[i] - m);
        tail += x[i];
    }
    return hsum(s) + tail;
}

/* One function per level and helper: the same bodies, different targets.
 * NAT: the level has native f32 compares/min/max; WIDEN: its f16 widening;
 * TILE: keys per q·k tile and vectors per value strip (4 fill 21 of
 * AVX-512's 32 registers; with 16 registers of a quarter or half the width,
 * 1). */
#define DEFINE_LEVEL(SUFFIX, TARGET, NAT, WIDEN, TILE)                                        \
    TARGET static double sumsq_##SUFFIX(const float *x, int64_t n) { return sumsq_body(x, n); } \
    TARGET static void mean_var_##SUFFIX(const float *x, int64_t n, double *m, double *v)     \
    {                                                                                         \
        mean_var_body(x, n, m, v);                                                            \
    }                                                                                         \
    TARGET static void scale_##SUFFIX(const float *x, float s, const float *w, int64_t n,     \
                                      float *y)                                               \
    {                                                                                         \
        scale_body(x, s, w, n, y);                                                            \
    }                                                                                         \
    TARGET static void axpy_##SUFFIX(float *y, float a, const float *x, int64_t n)            \
    {                                                                                         \
        axpy_body(y, a, x, n);                                                                \
    }                                                                                         \
    TARGET static void mix_##SUFFIX(float *y, const float *b, const float *c,                 \
                                    const float *const *x, int k, int64_t n)                  \
    {                                                                                         \
        mix_body(y, b, c, x, k, n);                                                           \
    }                                                                                         \
    TARGET static void gelu_mul_##SUFFIX(float *g, const float *u, int64_t n)                 \
    {                                                                                         \
        gelu_mul_body(NAT, g, u, n);                                                          \
    }                                                                                         \
    TARGET static void relu_shift_##SUFFIX(float *x, float c, int64_t n)                      \
    {                                                                                         \
        relu_shift_body(NAT, x, c, n);                                                        \
    }                                                                                         \
    TARGET static void softcap_##SUFFIX(float *x, int64_t n, float cap)                       \
    {                                                                                         \
        softcap_body(NAT, x, n, cap);                                                         \
    }                                                                                         \
    TARGET static void softmax_##SUFFIX(float *x, int64_t n) { softmax_body(NAT, x, n); }     \
    TARGET static void dots_##SUFFIX(const float *q, int nq, const float *k, int64_t n_keys,  \
                                     int64_t d, float *s, int64_t lds)                        \
    {                                                                                         \
        dots_body(WIDEN, 0, TILE, q, nq, k, n_keys, d, s, lds);                               \
    }                                                                                         \
    TARGET static void accum_##SUFFIX(const float *p, int64_t ldp, int nq, const float *v,    \
                                      int64_t n_keys, int64_t d, float *out)                  \
    {                                                                                         \
        accum_body(WIDEN, 0, TILE, p, ldp, nq, v, n_keys, d, out);                            \
    }                                                                                         \
    TARGET static void dots_f16_##SUFFIX(const float *q, int nq, const uint16_t *k,           \
                                         int64_t n_keys, int64_t d, float *s, int64_t lds)    \
    {                                                                                         \
        dots_body(WIDEN, 1, TILE, q, nq, k, n_keys, d, s, lds);                               \
    }                                                                                         \
    TARGET static void accum_f16_##SUFFIX(const float *p, int64_t ldp, int nq,                \
                                          const uint16_t *v, int64_t n_keys, int64_t d,       \
                                          float *out)                                         \
    {                                                                                         \
        accum_body(WIDEN, 1, TILE, p, ldp, nq, v, n_keys, d, out);                            \
    }                                                                                         \
    TARGET static float max_##SUFFIX(const float *x, int64_t n) { return max_body(NAT, x, n); } \
    TARGET static float exp_sum_##SUFFIX(float *x, int64_t n, float m)                        \
    {                                                                                         \
        return exp_sum_body(NAT, x, n, m);                                                    \
    }                                                                                         \
    static const gf_vec_ops ops_##SUFFIX = {                                                  \
        #SUFFIX,          sumsq_##SUFFIX,   mean_var_##SUFFIX, scale_##SUFFIX,                \
        axpy_##SUFFIX,    mix_##SUFFIX,     gelu_mul_##SUFFIX, relu_shift_##SUFFIX,           \
        softcap_##SUFFIX,                                                                     \
        softmax_##SUFFIX, dots_##SUFFIX,    accum_##SUFFIX,    dots_f16_##SUFFIX,             \
        accum_f16_##SUFFIX, max_##SUFFIX,   exp_sum_##SUFFIX,                                 \
    };

DEFINE_LEVEL(scalar, , 0, ldh, 1)
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
DEFINE_LEVEL(avx2, __attribute__((target("avx2,fma"))), 0, ldh, 1)
DEFINE_LEVEL(avx512, __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), 1,
             ldh_avx512, 4)
#endif

const gf_vec_ops *gf_vec_for_level(gf_kernel_level level)
{
    if (!gf_kernels_for_level(level))
        return NULL;
    switch (level) {
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
    case GF_LEVEL_AVX512: return &ops_avx512;
    case GF_LEVEL_AVX2: return &ops_avx2;
#endif
#if defined(__aarch64__) && !defined(GF_SIMD_DISABLED)
    case GF_LEVEL_NEON:
    case GF_LEVEL_DOTPROD:
    case GF_LEVEL_I8MM: return gf_vec_neon() ? gf_vec_neon() : &ops_scalar;
#endif
    default: return &ops_scalar;
    }
}

const gf_vec_ops *gf_vec(void) { return gf_vec_for_level(gf_kernels()->level); }
