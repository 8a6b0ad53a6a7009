/* expneg.h — e^x for x <= 0 in float, written out (no libm) so that it
 * vectorizes and gives the same bits on every platform.  Cody-Waite
 * reduction and the Cephes expf polynomial: within 2 ulp of e^x on
 * [-87, 0]; exactly 1 at 0; 0 below -87 (weights under e^-87 of the
 * maximum count as nothing) and for -inf.  Include after fp.h. */
#ifndef GF_EXPNEG_H
#define GF_EXPNEG_H

#include <stdint.h>
#include <string.h>

static inline float gf_exp_neg(float x)
{
    int underflow = !(x >= -87.0f); /* also catches NaN, never expected */
    x = underflow ? 0.0f : x;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (round to nearest) */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;   /* ln 2 split so n * hi is exact */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n, n in [-126, 0] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float e = p * scale;
    return underflow ? 0.0f : e;
}

#endif
