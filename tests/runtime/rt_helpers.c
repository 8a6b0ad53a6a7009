/* rt_helpers.c — see rt_helpers.h. */
#include "rt_helpers.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *rt_data_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("GEMFA_TEST_DATA");
    cr_assert_not_null(root, "GEMFA_TEST_DATA is not set");
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    return buf;
}

gemfa_model *rt_load(const char *dir, gemfa_weight_type weights)
{
    gemfa_model_options *o = NULL;
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_set_weights(o, weights), GEMFA_OK);
    gemfa_status st = gemfa_model_load(rt_data_path(dir), o, &m);
    gemfa_model_options_free(o);
    cr_assert_eq(st, GEMFA_OK, "loading %s: %s: %s", dir, gemfa_status_name(st),
                 gemfa_last_error());
    return m;
}

gemfa_context *rt_context(const gemfa_model *m)
{
    gemfa_context *ctx = NULL;
    gemfa_status st = gemfa_context_new(m, NULL, &ctx);
    cr_assert_eq(st, GEMFA_OK, "context: %s", gemfa_last_error());
    return ctx;
}

gemfa_session *rt_session(gemfa_context *ctx, int64_t max_context)
{
    gemfa_session_options *o = NULL;
    gemfa_session *s = NULL;
    cr_assert_eq(gemfa_session_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_session_options_set_max_context(o, max_context), GEMFA_OK);
    gemfa_status st = gemfa_session_new(ctx, o, &s);
    gemfa_session_options_free(o);
    cr_assert_eq(st, GEMFA_OK, "session: %s", gemfa_last_error());
    return s;
}

void *rt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read of %s", path);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void *golden(const char *dir, const char *name, size_t *len)
{
    char rel[1024];
    snprintf(rel, sizeof rel, "%s/golden/%s", dir, name);
    return rt_read(rt_data_path(rel), len);
}

float *rt_golden_f32(const char *dir, const char *name, size_t *n)
{
    size_t len;
    float *p = golden(dir, name, &len);
    *n = len / sizeof(float);
    return p;
}

int32_t *rt_golden_i32(const char *dir, const char *name, size_t *n)
{
    size_t len;
    int32_t *p = golden(dir, name, &len);
    *n = len / sizeof(int32_t);
    return p;
}

double rt_max_abs_diff(const float *a, const float *b, size_t n)
{
    double mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= mx)) /* NaN counts as infinitely wrong */
            mx = isnan(d) ? INFINITY : d;
    }
    return mx;
}

static size_t argmax(const float *x, size_t n, double *margin)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    double second = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (i != best && x[i] > second)
            second = x[i];
    if (margin)
        *margin = x[best] - second;
    return best;
}

double rt_check_logits(const char *what, const float *got, const float *want, size_t rows,
                       size_t V, double tol, double margin)
{
    double worst = 0;
    for (size_t r = 0; r < rows; r++) {
        const double d = rt_max_abs_diff(got + r * V, want + r * V, V);
        cr_expect(d <= tol, "%s: position %zu: max |logit diff| %.3g > %.3g", what, r, d, tol);
        if (d > worst)
            worst = d;
        double m;
        const size_t a_want = argmax(want + r * V, V, &m), a_got = argmax(got + r * V, V, NULL);
        if (m > margin)
            cr_expect_eq(a_got, a_want, "%s: position %zu: argmax %zu, golden %zu (margin %.3f)",
                         what, r, a_got, a_want, m);
    }
    return worst;
}

float *rt_decode_all(gemfa_session *s, const int32_t *ids, size_t n, size_t V)
{
    float *out = malloc(n * V * sizeof(float));
    cr_assert_not_null(out);
    gemfa_status st = gemfa_decode_all(s, ids, n, out, n * V);
    cr_assert_eq(st, GEMFA_OK, "decode_all of %zu ids: %s: %s", n, gemfa_status_name(st),
                 gemfa_last_error());
    return out;
}
