/* accept.h — the speculative-sampling acceptance rule on dense
 * distributions (Leviathan et al. 2023, Chen et al. 2023): a draft token x
 * drawn from q is kept with probability min(1, p(x) / q(x)); otherwise the
 * replacement is drawn from max(0, p − q) renormalized.  Kept or replaced,
 * the token is then distributed exactly as p.  Pure functions: the caller
 * supplies the uniform numbers, so tests can check the rule alone. */
#ifndef GF_SPEC_ACCEPT_H
#define GF_SPEC_ACCEPT_H

#include <stddef.h>
#include <stdint.h>

/* The index the uniform u in [0, 1) selects from weights w[0..n) (each
 * >= 0) whose sum is `total` > 0: the first whose running sum passes
 * u * total, so a zero weight is never chosen (rounding that leaves the sum
 * short picks the last positive weight). */
int32_t gf_spec_draw(const float *w, size_t n, double total, double u);

/* Sum of w[0..n) in double. */
double gf_spec_total(const float *w, size_t n);

/* Verifies draft token x (0 <= x < n) against the target distribution
 * p[0..n) and the draft distribution q[0..n) (q NULL: the draft was
 * certain, q = 1 at x).  u_keep and u_redraw are uniform in [0, 1).
 * Returns x and sets *kept = 1 when u_keep * q(x) < p(x); otherwise *kept
 * = 0 and returns the draw u_redraw from max(0, p − q) (from p itself if
 * that is all zero, which only rounding can cause). */
int32_t gf_spec_verify(const float *p, const float *q, size_t n, int32_t x, double u_keep,
                       double u_redraw, int *kept);

#endif
