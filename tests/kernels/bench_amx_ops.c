/* bench_amx_ops.c — what one step of the AMX prompt GEMM (kernels/gemm_amx.c)
 * costs, instruction group by instruction group, in TSC cycles per
 * iteration (built on x86-64, not run as a test; exits 0 with a message
 * where the CPU or the OS gives no AMX-INT8):
 *
 *   bench_amx_ops
 *
 * A "fold" is what follows every TDPBSSD of one 32-k block: 16 rows of
 * cvt + mul + fma on a stored 16 x 16 int32 tile.  Operands stay in L1.
 * If tile and vector work overlapped, "TDPBSSD + fold" would cost about
 * the larger of the two; docs/performance.md has the figures. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "kernels/gemm.h"

#define TARGET __attribute__((target("avx512f,avx512dq,amx-tile,amx-int8")))
#define N 200000

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} cfg_t;
static const cfg_t cfg __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 32, 32, 64, 64}, {16, 16, 16, 16, 16, 16, 8, 8}};
static int8_t A[32768] __attribute__((aligned(64))), B[32768] __attribute__((aligned(64)));
static int32_t C[1024] __attribute__((aligned(64))), D[1024] __attribute__((aligned(64)));
static float dx[1024] __attribute__((aligned(64)));

#define FOLD(c)                                                                          \
    __asm__ volatile("" ::: "memory"); /* no hoisting of the loads out of the loop */    \
    for (int r = 0; r < 16; r++)                                                         \
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((c) + r * 16)),   \
                                 _mm512_mul_ps(dw, _mm512_set1_ps(dx[(i & 63) * 16 + r])), acc[r])
#define ISSUE(i)                                                                         \
    do {                                                                                 \
        _tile_loadd(4, A + ((i) & 63) * 512, 32);                                        \
        _tile_loadd(6, B + ((i) & 63) * 512, 64);                                        \
        _tile_zero(0);                                                                   \
        _tile_dpbssd(0, 4, 6);                                                           \
    } while (0)
#define RUN(name, body)                                                                  \
    do {                                                                                 \
        __m512 acc[16];                                                                  \
        for (int r = 0; r < 16; r++)                                                     \
            acc[r] = _mm512_setzero_ps();                                                \
        uint64_t t0 = __rdtsc();                                                         \
        for (int i = 0; i < N; i++) {                                                    \
            body;                                                                        \
        }                                                                                \
        uint64_t t1 = __rdtsc();                                                         \
        float s = 0;                                                                     \
        for (int r = 0; r < 16; r++)                                                     \
            s += _mm512_reduce_add_ps(acc[r]);                                           \
        printf("%-46s %6.1f%s\n", name, (double)(t1 - t0) / N, s == 1234.5f ? " " : "");  \
    } while (0)

TARGET static void run(void)
{
    const __m512 dw = _mm512_set1_ps(1.0f);
    _tile_loadconfig(&cfg);
    printf("%-46s %6s\n", "per iteration (operands in L1)", "TSC");
    RUN("TDPBSSD 16x16x32 (same C)", _tile_dpbssd(0, 4, 6));
    RUN("tileloadd A 16 x 32 B", _tile_loadd(4, A + (i & 63) * 512, 32));
    RUN("tileloadd B 8 x 64 B", _tile_loadd(6, B + (i & 63) * 512, 64));
    RUN("tilestored C 16 x 64 B", _tile_stored(0, C, 64));
    RUN("fold (16 x cvt, mul, fma)", { FOLD(D); });
    RUN("load A, B, zero, TDPBSSD, store C", {
        ISSUE(i);
        _tile_stored(0, C, 64);
    });
    RUN("TDPBSSD + fold", {
        _tile_dpbssd(0, 4, 6);
        FOLD(D);
    });
    RUN("tilestored + fold", {
        _tile_stored(0, C, 64);
        FOLD(D);
    });
    RUN("load A, B, zero, TDPBSSD, store C + fold of C", {
        ISSUE(i);
        _tile_stored(0, C, 64);
        FOLD(C);
    });
    _tile_release();
}

int main(void)
{
    if (gf_amx_probe() != GF_AMX_READY) {
        printf("bench_amx_ops: no AMX-INT8 for this process (CPU or OS); nothing to measure\n");
        return 0;
    }
    memset(A, 1, sizeof A);
    memset(B, 1, sizeof B);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t q0 = __rdtsc();
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec) < 2e8);
    printf("TSC %.3f GHz\n", (double)(__rdtsc() - q0) / 2e8);
    run();
    return 0;
}
#else
#include <stdio.h>
int main(void)
{
    printf("bench_amx_ops: x86-64 only\n");
    return 0;
}
#endif
