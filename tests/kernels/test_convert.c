/* test_convert.c — f32 <-> bf16 <-> f16 conversions, exhaustively over the
 * 16-bit formats: exact widening, exact round trips, ties to even at every
 * midpoint, overflow to infinity, subnormals, NaN and signed zero; and the
 * activation quantizer (round trip bound, identical at every level). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernel_util.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* The value of an f16 bit pattern, computed independently with ldexp. */
static double f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

Test(convert, f16_to_f32_all_values)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = gf_f16_to_f32((uint16_t)h);
        double v = f16_value((uint16_t)h);
        if (isnan(v))
            cr_assert(isnan(f), "%04x", h);
        else
            cr_assert_eq((double)f, v, "%04x: %g vs %g", h, f, v);
        cr_assert_eq(signbit(f) != 0, (h >> 15) != 0);
    }
}

Test(convert, bf16_to_f32_all_values)
{
    for (uint32_t h = 0; h < 65536; h++)
        cr_assert_eq(bits(gf_bf16_to_f32((uint16_t)h)), h << 16);
}

/* For every finite value of the format: it converts back exactly, and the
 * midpoint to its upper neighbour rounds to the one with an even mantissa,
 * a hair above the midpoint rounds up and a hair below rounds down. */
static void check_rounding(int is_f16)
{
    for (uint32_t h = 0; h < 0x7c00u + (is_f16 ? 0 : 0x7f80u - 0x7c00u); h++) {
        uint16_t lo = (uint16_t)h, hi = (uint16_t)(h + 1);
        float a = is_f16 ? gf_f16_to_f32(lo) : gf_bf16_to_f32(lo);
        float b = is_f16 ? gf_f16_to_f32(hi) : gf_bf16_to_f32(hi); /* may be inf */
        uint16_t back = is_f16 ? gf_f32_to_f16(a) : gf_f32_to_bf16(a);
        cr_assert_eq(back, lo, "round trip %04x", lo);
        cr_assert_eq(is_f16 ? gf_f32_to_f16(-a) : gf_f32_to_bf16(-a), lo | 0x8000);
        /* midpoint in double (exact), then to f32: exact for both formats
         * (f16 and bf16 midpoints need at most 12 and 9 significant bits) */
        double bd = isinf(b) ? (is_f16 ? 65536.0 : ldexp(1.0, 128)) : (double)b;
        double mid = ((double)a + bd) / 2;
        if (mid >= ldexp(1.0, 128) * (1 - ldexp(1.0, -25)))
            continue; /* bf16: the midpoint to "2^128" is above FLT_MAX */
        float m = (float)mid;
        cr_assert_eq((double)m, mid);
        uint16_t want = (lo & 1) ? hi : lo;
        uint16_t got = is_f16 ? gf_f32_to_f16(m) : gf_f32_to_bf16(m);
        cr_assert_eq(got, want, "tie at %a between %04x and %04x gave %04x", mid, lo, hi, got);
        float above = nextafterf(m, INFINITY), below = nextafterf(m, 0);
        cr_assert_eq(is_f16 ? gf_f32_to_f16(above) : gf_f32_to_bf16(above), hi);
        if (below > a || (below == a && a == 0 && m > 0))
            cr_assert_eq(is_f16 ? gf_f32_to_f16(below) : gf_f32_to_bf16(below), lo);
    }
}

Test(convert, f16_round_trip_and_ties_to_even) { check_rounding(1); }
Test(convert, bf16_round_trip_and_ties_to_even) { check_rounding(0); }

Test(convert, special_values)
{
    /* infinities, signed zero, NaN (also one whose payload sits in the bits
     * a 16-bit format drops: it must stay a NaN, not become infinity) */
    cr_assert_eq(gf_f32_to_f16(INFINITY), 0x7c00);
    cr_assert_eq(gf_f32_to_f16(-INFINITY), 0xfc00);
    cr_assert_eq(gf_f32_to_bf16(INFINITY), 0x7f80);
    cr_assert_eq(gf_f32_to_bf16(-0.0f), 0x8000);
    cr_assert_eq(gf_f32_to_f16(-0.0f), 0x8000);
    float snan;
    uint32_t u = 0x7f800001;
    memcpy(&snan, &u, 4);
    cr_assert(isnan(gf_bf16_to_f32(gf_f32_to_bf16(snan))));
    cr_assert(isnan(gf_f16_to_f32(gf_f32_to_f16(snan))));
    cr_assert(isnan(gf_f16_to_f32(gf_f32_to_f16(NAN))));
    cr_assert(isnan(gf_bf16_to_f32(gf_f32_to_bf16(-NAN))));
    /* overflow */
    cr_assert_eq(gf_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(gf_f32_to_f16(65519.99f), 0x7bff);
    cr_assert_eq(gf_f32_to_f16(65520.0f), 0x7c00, "the tie above the largest f16 goes to inf");
    cr_assert_eq(gf_f32_to_f16(1e30f), 0x7c00);
    cr_assert_eq(gf_f32_to_bf16(FLT_MAX), 0x7f80);
    /* f16 subnormals and underflow */
    cr_assert_eq(gf_f32_to_f16(ldexpf(1, -24)), 0x0001);
    cr_assert_eq(gf_f32_to_f16(ldexpf(1, -25)), 0x0000, "tie to even: 0");
    cr_assert_eq(gf_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
    cr_assert_eq(gf_f32_to_f16(ldexpf(1, -40)), 0x0000);
    cr_assert_eq(gf_f32_to_f16(-ldexpf(1, -40)), 0x8000);
    cr_assert_eq(gf_f32_to_f16(ldexpf(1023, -24)), 0x03ff);
    cr_assert_eq(gf_f32_to_f16(ldexpf(2047, -25)), 0x0400, "rounds up into the normals");
    /* bf16 keeps f32 subnormals (rounded) */
    cr_assert_eq(gf_f32_to_bf16(ldexpf(1, -133)), 0x0001);
    cr_assert_eq(gf_f32_to_bf16(ldexpf(1, -149)), 0x0000);
    /* f32 subnormals to f16: zero */
    cr_assert_eq(gf_f32_to_f16(ldexpf(1, -130)), 0x0000);
}

Test(quantize, round_trip_bound_and_levels_agree)
{
    enum { N = 32 * 37 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = test_randf() * ldexpf(1, (i / 32) % 20 - 10); /* blocks of many scales */
    for (int i = 0; i < 32; i++)
        x[32 * 5 + i] = 0;                  /* an all-zero block */
    for (int i = 0; i < 32; i++)
        x[32 * 6 + i] = (float)(i - 16) + 0.5f; /* ties, max 15.5 */
    x[32 * 6 + 31] = 127;                   /* so that id = 1: exact .5 ties */
    int8_t q0[N], q[N];
    float d0[N / 32], d[N / 32];
    int32_t c0[N / 4], c[N / 4];
    const gf_kernel_table *s = gf_kernels_for_level(GF_LEVEL_SCALAR);
    s->quantize_q8(x, N, q0, d0, c0);
    for (int b = 0; b < N / 32; b++) {
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            float e = fabsf(x[b * 32 + i] - d0[b] * q0[b * 32 + i]);
            /* d/2 from rounding, plus the rounding of d and of 127/max */
            cr_assert_leq(e, d0[b] * 0.5f * (1 + 1e-6f) + fabsf(x[b * 32 + i]) * 1e-6f,
                          "block %d: |%g - %g * %d|", b, x[b * 32 + i], d0[b], q0[b * 32 + i]);
            cr_assert(q0[b * 32 + i] >= -127 && q0[b * 32 + i] <= 127);
            sum += q0[b * 32 + i];
        }
        cr_assert_eq(c0[b * 8], -128 * sum);
        for (int l = 1; l < 8; l++)
            cr_assert_eq(c0[b * 8 + l], 0);
    }
    cr_assert_eq(d0[5], 0);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(q0[32 * 5 + i], 0);
    cr_assert_eq(q0[32 * 6 + 0], -16, "-15.5 rounds to even");
    cr_assert_eq(q0[32 * 6 + 1], -14, "-14.5 rounds to even");
    cr_assert_eq(q0[32 * 6 + 16], 0, "0.5 rounds to even");
    for (int level = 1; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        k->quantize_q8(x, N, q, d, c);
        cr_assert_arr_eq(q, q0, sizeof q, "%s", k->name);
        cr_assert_arr_eq(d, d0, sizeof d, "%s", k->name);
        cr_assert_arr_eq(c, c0, sizeof c, "%s", k->name);
    }
}

Test(quantize, non_finite_blocks)
{
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)i;
    x[3] = NAN;
    x[40] = INFINITY;
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        int8_t q[64];
        float d[2];
        int32_t c[16];
        k->quantize_q8(x, 64, q, d, c);
        cr_assert(isnan(d[0]), "%s: a NaN block has a NaN scale", k->name);
        cr_assert(isinf(d[1]), "%s", k->name);
        for (int i = 0; i < 64; i++)
            cr_assert_eq(q[i], 0, "%s q[%d]", k->name, i);
    }
}

/* Weight quantization: every level bit for bit like an independent
 * reference (roundf is round half away from zero), on blocks of many
 * scales, exact .5 ties, zero, NaN and infinite blocks. */
Test(quantize, weights_match_reference_at_every_level)
{
    enum { NB = 40, N = 32 * NB };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = test_randf() * ldexpf(1, (i / 32) % 30 - 15);
    for (int i = 0; i < 32; i++) {
        x[32 * 3 + i] = 0;                         /* zero block */
        x[32 * 4 + i] = (float)(i - 16) + 0.5f;    /* ties: d = 1 below */
        x[32 * 7 + i] = test_randf();
    }
    x[32 * 4 + 31] = 127;
    x[32 * 5 + 3] = NAN;       /* NaN skipped by the max, quantized to 0 */
    x[32 * 6 + 9] = INFINITY;  /* infinite scale: all zero */
    x[32 * 7 + 5] = 1e-40f;    /* a subnormal in a normal block */
    int8_t qr[N];
    uint16_t sr[NB];
    for (int b = 0; b < NB; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++)
            if (!isnan(x[b * 32 + i]))
                amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        float d = amax / 127.0f;
        sr[b] = gf_f32_to_f16(d);
        for (int i = 0; i < 32; i++) {
            float v = x[b * 32 + i] / d;
            qr[b * 32 + i] = (d > 0 && isfinite(d) && !isnan(v)) ? (int8_t)roundf(fminf(fmaxf(v, -127), 127)) : 0;
        }
    }
    cr_assert_eq(qr[32 * 4 + 0], -16, "-15.5 rounds away from zero");
    cr_assert_eq(qr[32 * 4 + 16], 1, "0.5 rounds away from zero");
    cr_assert_eq(sr[6], 0x7c00);
    for (int level = 0; level < GF_LEVEL_COUNT; level++) {
        const gf_kernel_table *k = gf_kernels_for_level((gf_kernel_level)level);
        if (!k)
            continue;
        int8_t q[N];
        uint16_t s[NB];
        k->quantize_weights_q8(x, N, q, s);
        cr_assert_arr_eq(q, qr, sizeof q, "%s", k->name);
        cr_assert_arr_eq(s, sr, sizeof s, "%s", k->name);
    }
    int8_t q[N];
    uint16_t s[NB];
    gf_quantize_weights_q8(x, N, q, s);
    cr_assert_arr_eq(q, qr, sizeof q);
}
