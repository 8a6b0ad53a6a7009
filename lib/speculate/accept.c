/* accept.c — the acceptance rule of speculative sampling (accept.h). */
#include "speculate/accept.h"

double gf_spec_total(const float *w, size_t n)
{
    double t = 0.0;
    for (size_t i = 0; i < n; i++)
        t += w[i];
    return t;
}

int32_t gf_spec_draw(const float *w, size_t n, double total, double u)
{
    double target = u * total, cum = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] <= 0.0f)
            continue;
        last = i;
        cum += w[i];
        if (cum > target)
            return (int32_t)i;
    }
    return (int32_t)last;
}

/* max(0, p − q) at i, with q one-hot at x when q is NULL. */
static inline double residual(const float *p, const float *q, size_t i, size_t x)
{
    double qi = q ? (double)q[i] : (i == x ? 1.0 : 0.0);
    double r = (double)p[i] - qi;
    return r > 0.0 ? r : 0.0;
}

int32_t gf_spec_verify(const float *p, const float *q, size_t n, int32_t x, double u_keep,
                       double u_redraw, int *kept)
{
    size_t xs = (size_t)x;
    double qx = q ? (double)q[xs] : 1.0;
    if (u_keep * qx < (double)p[xs]) {
        *kept = 1;
        return x;
    }
    *kept = 0;
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += residual(p, q, i, xs);
    if (!(total > 0.0))
        return gf_spec_draw(p, n, gf_spec_total(p, n), u_redraw);
    double target = u_redraw * total, cum = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        double r = residual(p, q, i, xs);
        if (r <= 0.0)
            continue;
        last = i;
        cum += r;
        if (cum > target)
            return (int32_t)i;
    }
    return (int32_t)last;
}
