/* num.c — the number frame: JSON number syntax with digit caps, and exact
 * bounds.
 *
 * A value is kept as its integer digits I and fraction digits F (at most 19
 * each), so value * 10^19 = I * 10^19 + F * 10^(19 - nf) fits a signed
 * 128-bit integer and comparisons with the bounds are exact.  After every
 * byte the set of values the prefix can still become is checked against
 * the bounds, so an accepted prefix always has a completion in range.
 *
 * Bounds come from the schema as doubles; gf_num_bound rounds their
 * 17-digit decimal form inward.  A text t accepted with t <= D, where D is a
 * decimal that parses to the bound, parses to a double <= the bound
 * (rounding is monotonic), so validators that compare doubles agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constrain/jsm.h"

enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

#define NI(f) ((f)->a & 0xff)
#define NF(f) (((f)->a >> 8) & 0xff)
#define NE(f) (((f)->a >> 16) & 0xff)
#define NEG(f) ((f)->b & 1)

static gf_i128 pow10_i128(int k)
{
    gf_i128 p = 1;
    while (k-- > 0)
        p *= 10;
    return p;
}

static const gf_i128 SCALE = (gf_i128)10000000000000000000ULL; /* 10^19 */

/* Does [a, b] (magnitudes, scaled) meet the node's bounds once the sign is
 * applied? */
static int meets(const gf_jnode *n, int neg, gf_i128 a, gf_i128 b)
{
    gf_i128 lo = neg ? -b : a, hi = neg ? -a : b;
    if (n->has_hi && lo > n->hi)
        return 0;
    if (n->has_lo && hi < n->lo)
        return 0;
    return 1;
}

/* Can the prefix in `f` still become a number in range? */
static int feasible(const gf_jnode *n, const gf_jframe *f)
{
    if (!n->has_lo && !n->has_hi)
        return 1;
    int neg = NEG(f);
    gf_i128 unit = n->integer ? SCALE : 1; /* spacing of reachable values */
    switch (f->sub) {
    case N_MINUS:
        return meets(n, neg, 0, pow10_i128(GF_NUM_DIGITS) * SCALE - unit);
    case N_ZERO:
        return meets(n, neg, 0, n->integer ? 0 : SCALE - 1);
    case N_INT: {
        gf_i128 v = (gf_i128)f->x;
        for (int k = 0; NI(f) + k <= GF_NUM_DIGITS; k++) {
            gf_i128 p = pow10_i128(k);
            if (meets(n, neg, v * p * SCALE, (v + 1) * p * SCALE - unit))
                return 1;
        }
        return 0;
    }
    case N_DOT:
    case N_FRAC: {
        gf_i128 step = pow10_i128(GF_NUM_DIGITS - (int)NF(f));
        gf_i128 v = (gf_i128)f->x * SCALE + (gf_i128)f->y * step;
        return meets(n, neg, v, v + step - 1);
    }
    default:
        return 0; /* exponents never appear with bounds */
    }
}

int gf_num_begin(const gf_jnode *n, gf_jframe *f, uint8_t c)
{
    memset(f, 0, sizeof *f);
    f->kind = GF_JF_NUM;
    if (c == '-') {
        f->sub = N_MINUS;
        f->b = 1;
    } else if (c == '0') {
        f->sub = N_ZERO;
        f->a = 1;
    } else if (c >= '1' && c <= '9') {
        f->sub = N_INT;
        f->a = 1;
        f->x = (uint64_t)(c - '0');
    } else {
        return 0;
    }
    return feasible(n, f);
}

int gf_num_step(const gf_jnode *n, gf_jframe *f, uint8_t c)
{
    int digit = c >= '0' && c <= '9';
    int bounded = n->has_lo || n->has_hi;
    gf_jframe g = *f;
    switch (f->sub) {
    case N_MINUS:
        if (!digit)
            return 0;
        g.sub = c == '0' ? N_ZERO : N_INT;
        g.a = 1;
        g.x = (uint64_t)(c - '0');
        break;
    case N_ZERO:
    case N_INT:
        if (digit && f->sub == N_INT && NI(f) < GF_NUM_DIGITS) {
            g.x = f->x * 10 + (uint64_t)(c - '0');
            g.a = f->a + 1;
        } else if (c == '.' && !n->integer) {
            g.sub = N_DOT;
        } else if ((c == 'e' || c == 'E') && !n->integer && !bounded) {
            g.sub = N_E;
        } else {
            return 0;
        }
        break;
    case N_DOT:
    case N_FRAC:
        if (digit && NF(f) < GF_NUM_DIGITS) {
            g.sub = N_FRAC;
            g.y = f->y * 10 + (uint64_t)(c - '0');
            g.a = f->a + (1u << 8);
        } else if ((c == 'e' || c == 'E') && f->sub == N_FRAC && !bounded) {
            g.sub = N_E;
        } else {
            return 0;
        }
        break;
    case N_E:
        if (c == '+' || c == '-')
            g.sub = N_ESIGN;
        else if (digit)
            g.sub = N_EXP, g.a = f->a + (1u << 16);
        else
            return 0;
        break;
    case N_ESIGN:
    case N_EXP:
        if (!digit || NE(f) >= GF_NUM_EXP_DIGITS)
            return 0;
        g.sub = N_EXP;
        g.a = f->a + (1u << 16);
        break;
    default:
        return 0;
    }
    if (!feasible(n, &g))
        return 0;
    *f = g;
    return 1;
}

int gf_num_complete(const gf_jnode *n, const gf_jframe *f)
{
    if (f->sub != N_ZERO && f->sub != N_INT && f->sub != N_FRAC && f->sub != N_EXP)
        return 0;
    if (!n->has_lo && !n->has_hi)
        return 1;
    gf_i128 v = (gf_i128)f->x * SCALE;
    if (f->sub == N_FRAC)
        v += (gf_i128)f->y * pow10_i128(GF_NUM_DIGITS - (int)NF(f));
    if (NEG(f))
        v = -v;
    return (!n->has_lo || v >= n->lo) && (!n->has_hi || v <= n->hi);
}

int gf_num_bound(double v, int upper, gf_i128 *out)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.17e", v);
    /* "-d.ddddddddddddddddde+XX": 18 digits M, value = M * 10^(E - 17) */
    const char *p = buf;
    int neg = *p == '-';
    if (neg)
        p++;
    gf_i128 m = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            m = m * 10 + (*p - '0');
    int e = *p == 'e' ? atoi(p + 1) : 0;
    if (m == 0) {
        *out = 0;
        return 1;
    }
    /* magnitudes >= 10^19 are beyond every number the machine writes */
    if (e >= GF_NUM_DIGITS) {
        if (upper != neg)
            return 0;
        return -1;
    }
    int shift = e + 2; /* value * 10^19 = M * 10^(E + 2) */
    gf_i128 q;
    int exact = 1;
    if (shift >= 0) {
        q = m * pow10_i128(shift);
    } else if (-shift > 36) {
        q = 0;
        exact = 0;
    } else {
        gf_i128 d = pow10_i128(-shift);
        q = m / d;
        exact = m % d == 0;
    }
    /* round inward: an upper bound down, a lower bound up */
    if (!exact && (upper ? neg : !neg))
        q += 1;
    *out = neg ? -q : q;
    return 1;
}
