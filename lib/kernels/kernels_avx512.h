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

/* The int8 half of the AVX-512 level (kernels_avx512_q8.c). */
void gf_kernels_fill_avx512_q8(gf_kernel_table *t, int has_vnni);
/* The 4-bit half (kernels_avx512_q4.c). */
void gf_kernels_fill_avx512_q4(gf_kernel_table *t, int has_vnni);

#endif
#endif
