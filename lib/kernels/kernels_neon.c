/* kernels_neon.c — aarch64 Advanced SIMD (NEON) kernels for f32, F16 and
 * BF16 weights.  NEON and the f16 <-> f32 conversion (FCVTL) are part of
 * every Armv8-A CPU, so this file needs no target attribute.  As in the
 * AVX2 file, each weight row is loaded and widened once and multiplied with
 * up to 4 tokens, with two accumulators per token to hide the FMA latency:
 *   F16   FCVTL/FCVTL2 widen 8 weights to two f32 vectors
 *   BF16  USHLL/USHLL2 #16 (shift-widen) do the same for bf16
 * The int8 kernels are in kernels_neon_q8.c. */
#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__ARM_NEON) && !defined(GF_SIMD_DISABLED)
#include <arm_neon.h>
#include <string.h>

#include "kernels/convert.h"

#define INLINE static inline __attribute__((always_inline))
#define MAX_NT 4

/* 8 weights from element i as two f32 vectors. */
INLINE void load8_f32(const void *p, int64_t i, float32x4_t *lo, float32x4_t *hi)
{
    *lo = vld1q_f32((const float *)p + i);
    *hi = vld1q_f32((const float *)p + i + 4);
}
INLINE void load8_f16(const void *p, int64_t i, float32x4_t *lo, float32x4_t *hi)
{
    float16x8_t h = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)p + i));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
}
INLINE void load8_bf16(const void *p, int64_t i, float32x4_t *lo, float32x4_t *hi)
{
    uint16x8_t h = vld1q_u16((const uint16_t *)p + i);
    *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
}
INLINE float load1_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
INLINE float load1_f16(const void *p, int64_t i) { return gf_f16_to_f32(((const uint16_t *)p)[i]); }
INLINE float load1_bf16(const void *p, int64_t i) { return gf_bf16_to_f32(((const uint16_t *)p)[i]); }

/* One row against nt tokens; nt is a constant after inlining.  The tail
 * (n % 8 columns) goes one by one after the horizontal sum. */
#define DEFINE_ROWS(NAME, ELEM, LOAD8, LOAD1)                                                 \
    INLINE void NAME##_dot(const ELEM *w, const float *x, int64_t n, int nt, float *out)      \
    {                                                                                         \
        float32x4_t acc0[MAX_NT], acc1[MAX_NT];                                               \
        for (int t = 0; t < nt; t++)                                                          \
            acc0[t] = acc1[t] = vdupq_n_f32(0.0f);                                            \
        int64_t c = 0;                                                                        \
        for (; c + 8 <= n; c += 8) {                                                          \
            __builtin_prefetch((const char *)(w + c) + 2048);                                 \
            float32x4_t w0, w1;                                                               \
            LOAD8(w, c, &w0, &w1);                                                            \
            for (int t = 0; t < nt; t++) {                                                    \
                acc0[t] = vfmaq_f32(acc0[t], w0, vld1q_f32(x + t * n + c));                   \
                acc1[t] = vfmaq_f32(acc1[t], w1, vld1q_f32(x + t * n + c + 4));               \
            }                                                                                 \
        }                                                                                     \
        for (int t = 0; t < nt; t++) {                                                        \
            float s = vaddvq_f32(vaddq_f32(acc0[t], acc1[t]));                                \
            for (int64_t k = c; k < n; k++)                                                   \
                s += LOAD1(w, k) * x[t * n + k];                                              \
            out[t] = s;                                                                       \
        }                                                                                     \
    }                                                                                         \
    static void NAME(const gf_matrix *W, const gf_act *a, int64_t r0, int64_t r1, float *y)   \
    {                                                                                         \
        const int64_t n = W->cols;                                                            \
        float out[MAX_NT];                                                                    \
        for (int64_t r = r0; r < r1; r++) {                                                   \
            const ELEM *w = (const ELEM *)W->data + r * n;                                    \
            for (int64_t t0 = 0; t0 < a->n_tokens; t0 += MAX_NT) {                            \
                const float *x = a->x + t0 * n;                                               \
                int64_t nt = a->n_tokens - t0 < MAX_NT ? a->n_tokens - t0 : MAX_NT;           \
                switch (nt) {                                                                 \
                case 1: NAME##_dot(w, x, n, 1, out); break;                                   \
                case 2: NAME##_dot(w, x, n, 2, out); break;                                   \
                case 3: NAME##_dot(w, x, n, 3, out); break;                                   \
                default: NAME##_dot(w, x, n, 4, out); break;                                  \
                }                                                                             \
                for (int64_t t = 0; t < nt; t++)                                              \
                    y[(t0 + t) * W->rows + r] = out[t];                                       \
            }                                                                                 \
        }                                                                                     \
    }

DEFINE_ROWS(rows_f32, float, load8_f32, load1_f32)
DEFINE_ROWS(rows_f16, uint16_t, load8_f16, load1_f16)
DEFINE_ROWS(rows_bf16, uint16_t, load8_bf16, load1_bf16)

/* Exact widening (F16 and BF16 convert exactly to f32; Q8 is d * q with
 * one f32 rounding, as the scalar twin). */
static void widen_row(const gf_matrix *W, int64_t r, float *out)
{
    const int64_t n = W->cols;
    int64_t c = 0;
    float32x4_t lo, hi;
    switch (W->dtype) {
    case GF_DTYPE_F32:
        memcpy(out, (const float *)W->data + r * n, (size_t)n * sizeof(float));
        return;
    case GF_DTYPE_F16:
        for (; c + 8 <= n; c += 8) {
            load8_f16((const uint16_t *)W->data + r * n, c, &lo, &hi);
            vst1q_f32(out + c, lo);
            vst1q_f32(out + c + 4, hi);
        }
        for (; c < n; c++)
            out[c] = load1_f16((const uint16_t *)W->data + r * n, c);
        return;
    case GF_DTYPE_BF16:
        for (; c + 8 <= n; c += 8) {
            load8_bf16((const uint16_t *)W->data + r * n, c, &lo, &hi);
            vst1q_f32(out + c, lo);
            vst1q_f32(out + c + 4, hi);
        }
        for (; c < n; c++)
            out[c] = load1_bf16((const uint16_t *)W->data + r * n, c);
        return;
    case GF_DTYPE_Q8: { /* one quad (interleaved layout) per step */
        const gf_q8_row q = gf_q8_row_of(W, r);
        for (; c < n; c += 4) {
            int8_t b[8] = {0};
            memcpy(b, q.q + (c / 4) * 4 * q.h, 4);
            int32x4_t v = vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(b))));
            float d = gf_f16_to_f32(gf_q8_row_scale(q, c / GF_Q8_BLOCK));
            vst1q_f32(out + c, vmulq_n_f32(vcvtq_f32_s32(v), d));
        }
        return;
    }
    case GF_DTYPE_Q4: gf_q4_widen_row(W, r, out); return;
    }
}

void gf_kernels_fill_neon(gf_kernel_table *t)
{
    t->bf16_pairs = 0;
    t->widen_row = widen_row;
    t->rows[GF_DTYPE_F32] = rows_f32;
    t->rows[GF_DTYPE_F16] = rows_f16;
    t->rows[GF_DTYPE_BF16] = rows_bf16;
    gf_kernels_fill_neon_q8(t);
}
#endif
