/* q4_error.c — accuracy of the Q4 quantizer against llama.cpp's Q4_0 (and
 * of int8) on a checkpoint's matrices: relative RMS error
 * ||W - W^|| / ||W|| (sums over the whole matrix), per matrix, aggregated
 * by kind (the name without its layer number).  Built, not run as a test:
 *
 *   q4_error DIR [ROW_STEP]
 *
 * ROW_STEP > 1 measures every ROW_STEP-th row only (for large checkpoints).
 * Prints one line per kind: matrices, q4 rel RMS, q4_0 rel RMS, int8 rel
 * RMS, the worst per-matrix ratio q4 / q4_0 (<= 1 by construction). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemfa.h"
#include "kernels/convert.h"
#include "kernels/linear.h"
#include "kernels/q4_format.h"
#include "kernels/q8_format.h"
#include "kernels/weights.h"
#include "loader/safetensors.h"

typedef struct kind {
    char name[160];
    int n;
    double w2, e4, e40, e8, worst;
} kind;

static void kind_of(const char *name, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < cap; p++) {
        if (isdigit((unsigned char)*p) && p > name && p[-1] == '.') {
            while (isdigit((unsigned char)p[1]))
                p++;
            out[k++] = 'N';
        } else {
            out[k++] = *p;
        }
    }
    out[k] = 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: q4_error DIR [ROW_STEP]\n");
        return 2;
    }
    const int64_t step = argc > 2 ? atoll(argv[2]) : 1;
    gf_shard_set *set = NULL;
    if (gf_shard_set_open(argv[1], &set) != GEMFA_OK) {
        fprintf(stderr, "q4_error: %s\n", gemfa_last_error());
        return 1;
    }
    kind *kinds = calloc(set->n_tensors + 1, sizeof *kinds);
    int n_kinds = 0;
    double tw2 = 0, te4 = 0, te40 = 0;
    for (size_t i = 0; i < set->n_tensors; i++) {
        const gf_st_tensor *t = set->sorted[i];
        if (t->n_dims != 2 || t->shape[1] % 32 != 0 || strstr(t->name, "tower") ||
            strstr(t->name, "embed_tokens_per_layer") || strstr(t->name, "_coefs"))
            continue;
        gf_dtype dt;
        if (t->dtype == GF_ST_BF16) dt = GF_DTYPE_BF16;
        else if (t->dtype == GF_ST_F16) dt = GF_DTYPE_F16;
        else if (t->dtype == GF_ST_F32) dt = GF_DTYPE_F32;
        else continue;
        const int64_t rows = t->shape[0], cols = t->shape[1], nb = cols / 32;
        float *x = malloc((size_t)cols * sizeof *x);
        int8_t *k = malloc((size_t)cols), *k0 = malloc((size_t)cols), *q8 = malloc((size_t)cols);
        uint16_t *s = malloc((size_t)nb * 2), *s0 = malloc((size_t)nb * 2), *s8 = malloc((size_t)nb * 2);
        double w2 = 0, e4 = 0, e40 = 0, e8 = 0;
        for (int64_t r = 0; r < rows; r += step) {
            for (int64_t c = 0; c < cols; c++)
                x[c] = gf_stored_to_f32(t->data, dt, (size_t)(r * cols + c));
            gf_quantize_weights_q4(x, cols, k, s);
            gf_q4_0_quantize_row(x, cols, k0, s0);
            gf_quantize_weights_q8(x, cols, q8, s8);
            for (int64_t c = 0; c < cols; c++) {
                double v = x[c];
                double a = v - (double)gf_f16_to_f32(s[c / 32]) * k[c];
                double b = v - (double)gf_f16_to_f32(s0[c / 32]) * k0[c];
                double d = v - (double)gf_f16_to_f32(s8[c / 32]) * q8[c];
                w2 += v * v;
                e4 += a * a;
                e40 += b * b;
                e8 += d * d;
            }
        }
        char kn[160];
        kind_of(t->name, kn, sizeof kn);
        int j = 0;
        while (j < n_kinds && strcmp(kinds[j].name, kn) != 0)
            j++;
        if (j == n_kinds) {
            snprintf(kinds[j].name, sizeof kinds[j].name, "%s", kn);
            kinds[j].worst = 0;
            n_kinds++;
        }
        kind *K = &kinds[j];
        K->n++;
        K->w2 += w2;
        K->e4 += e4;
        K->e40 += e40;
        K->e8 += e8;
        const double ratio = e40 > 0 ? sqrt(e4 / e40) : 0;
        if (ratio > K->worst)
            K->worst = ratio;
        tw2 += w2;
        te4 += e4;
        te40 += e40;
        free(x);
        free(k);
        free(k0);
        free(q8);
        free(s);
        free(s0);
        free(s8);
        gf_st_advise_done(t);
    }
    printf("%-70s %4s %9s %9s %9s %8s\n", "matrix kind", "n", "q4", "q4_0", "int8", "worst");
    for (int j = 0; j < n_kinds; j++) {
        const kind *K = &kinds[j];
        printf("%-70s %4d %9.5f %9.5f %9.5f %8.4f\n", K->name, K->n, sqrt(K->e4 / K->w2),
               sqrt(K->e40 / K->w2), sqrt(K->e8 / K->w2), K->worst);
    }
    printf("%-70s %4s %9.5f %9.5f\n", "all", "", sqrt(te4 / tw2), sqrt(te40 / tw2));
    free(kinds);
    gf_shard_set_free(set);
    return 0;
}
