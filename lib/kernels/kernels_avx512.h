/* kernels_avx512.h — what the AVX-512 kernel files share (private to
 * lib/kernels): target attributes, the prefetch distance, small helpers. */
#ifndef GF_KERNELS_AVX512_H
#define GF_KERNELS_AVX512_H
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define TARGET_VNNI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INLINE static inline __attribute__((always_inline)) TARGET
/* Software prefetch distance along the weights: with the hardware
 * prefetcher alone one core read ~20 GB/s of 16-bit weights, with this
 * ~29 (two cores ~54), the read probe giving ~42 per core (measured). */
#ifndef GF_PREFETCH
#define GF_PREFETCH 4096
#endif

static inline int32_t load_i32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __mmask16 tail_mask(int64_t left) { return (__mmask16)((1u << left) - 1); }

/* ---- the row walk of the interleaved int8 and 4-bit VNNI row kernels
 * (kernels_avx512_q{8,4}.c; both layouts group rows by 16) ---- */

/* Tokens per pass over a group (batches up to the GEMM crossover). */
#define GF_MAX_NT 8
/* Up to this many tokens, two full groups go side by side: each token's
 * broadcast bytes then serve 32 rows. */
#define GF_PAIR_NT 4

/* fn(w, sw, n, h, qa, t0, NT, out) with NT the constant equal to nt (1 ..
 * GF_MAX_NT), so that an always-inline group kernel unrolls its token loops;
 * GF_PAIR_DISPATCH likewise for a pair kernel and 1 .. GF_PAIR_NT tokens. */
#define GF_GROUP_DISPATCH(fn, w, sw, n, h, qa, t0, nt, out)                                       \
    switch (nt) {                                                                                 \
    case 1: fn(w, sw, n, h, qa, t0, 1, out); break;                                               \
    case 2: fn(w, sw, n, h, qa, t0, 2, out); break;                                               \
    case 3: fn(w, sw, n, h, qa, t0, 3, out); break;                                               \
    case 4: fn(w, sw, n, h, qa, t0, 4, out); break;                                               \
    case 5: fn(w, sw, n, h, qa, t0, 5, out); break;                                               \
    case 6: fn(w, sw, n, h, qa, t0, 6, out); break;                                               \
    case 7: fn(w, sw, n, h, qa, t0, 7, out); break;                                               \
    default: fn(w, sw, n, h, qa, t0, 8, out); break;                                              \
    }
#define GF_PAIR_DISPATCH(fn, w, sw, n, qa, nt, out)                                               \
    switch (nt) {                                                                                 \
    case 1: fn(w, sw, n, qa, 1, out); break;                                                      \
    case 2: fn(w, sw, n, qa, 2, out); break;                                                      \
    case 3: fn(w, sw, n, qa, 3, out); break;                                                      \
    default: fn(w, sw, n, qa, 4, out); break;                                                     \
    }
_Static_assert(GF_MAX_NT == 8 && GF_PAIR_NT == 4, "the dispatch switches list every count");

/* Group of h <= 16 rows at w (scales sw), n columns: tokens [t0, t0 + nt)
 * of qa into out[t][row]. */
typedef void (*gf_group_fn)(const void *w, const uint16_t *sw, int64_t n, int64_t h,
                            const gf_q8_act *qa, int64_t t0, int nt,
                            float out[GF_MAX_NT][16]);
/* Two full groups from w on: tokens [0, nt) into out[group][t][row]. */
typedef void (*gf_pair_fn)(const void *w, const uint16_t *sw, int64_t n, const gf_q8_act *qa,
                           int nt, float out[2][GF_MAX_NT][16]);

/* Rows [r0, r1) of group g0 (h rows) from out[t] into y. */
static inline TARGET void gf_store_group(float *y, int64_t rows, int64_t g0, int64_t h,
                                         int64_t r0, int64_t r1, int64_t t0, int64_t nt,
                                         float out[GF_MAX_NT][16])
{
    const int64_t lo = g0 < r0 ? r0 - g0 : 0, hi = g0 + h > r1 ? r1 - g0 : h;
    const __mmask16 keep = (__mmask16)(tail_mask(hi) & ~tail_mask(lo));
    for (int64_t t = 0; t < nt; t++)
        _mm512_mask_storeu_ps(y + (t0 + t) * rows + g0, keep, _mm512_loadu_ps(out[t]));
}

/* y = W x for rows [r0, r1) of W (`row_bytes` bytes of codes per row), a
 * group or a pair of groups at a time. */
static inline TARGET void gf_rows_walk(const gf_matrix *W, const gf_act *a, int64_t r0,
                                       int64_t r1, float *y, int64_t row_bytes,
                                       gf_group_fn group, gf_pair_fn pair)
{
    const int64_t nb = W->cols / 32, nt_all = a->n_tokens;
    float out[2][GF_MAX_NT][16];
    for (int64_t g0 = r0 - r0 % 16; g0 < r1;) {
        const int64_t h = W->rows - g0 < 16 ? W->rows - g0 : 16;
        const unsigned char *w = (const unsigned char *)W->data + g0 * row_bytes;
        const uint16_t *sw = W->scales + g0 * nb;
        if (nt_all <= GF_PAIR_NT && g0 + 32 <= W->rows && g0 + 16 < r1) {
            pair(w, sw, W->cols, &a->q8, (int)nt_all, out);
            gf_store_group(y, W->rows, g0, 16, r0, r1, 0, nt_all, out[0]);
            gf_store_group(y, W->rows, g0 + 16, 16, r0, r1, 0, nt_all, out[1]);
            g0 += 32;
            continue;
        }
        for (int64_t t0 = 0; t0 < nt_all; t0 += GF_MAX_NT) {
            const int64_t nt = nt_all - t0 < GF_MAX_NT ? nt_all - t0 : GF_MAX_NT;
            group(w, sw, W->cols, h, &a->q8, t0, (int)nt, out[0]);
            gf_store_group(y, W->rows, g0, h, r0, r1, t0, nt, out[0]);
        }
        g0 += 16;
    }
}

/* The int8 half of the AVX-512 level (kernels_avx512_q8.c). */
void gf_kernels_fill_avx512_q8(gf_kernel_table *t, int has_vnni);
/* The 4-bit half (kernels_avx512_q4.c). */
void gf_kernels_fill_avx512_q4(gf_kernel_table *t, int has_vnni);

#endif
#endif
