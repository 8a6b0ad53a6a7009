/* layer_error.c — how an error grows through the layers: decodes the same
 * ids with two weight types of one checkpoint and prints, per layer, the
 * relative difference of the AltUp streams after the layer (max and rms,
 * over all streams and positions).  Built, not run as a test; used for the
 * accuracy notes of docs/performance.md.
 *
 *   layer_error DIR TYPE_A TYPE_B ID,ID,...      (types: auto f32 f16 bf16 int8) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemfa.h"
#include "runtime/context.h"

typedef struct streams {
    int n_layers;
    size_t per_layer; /* floats per layer: K × rows × H */
    float *data;
} streams;

static void collect(void *user, const char *name, int layer, const float *data, int n_streams,
                    int64_t stride, int64_t n_rows, int64_t width)
{
    streams *s = user;
    if (strcmp(name, "streams_out") != 0 || layer < 0 || layer >= s->n_layers)
        return;
    for (int k = 0; k < n_streams; k++)
        memcpy(s->data + (size_t)layer * s->per_layer + (size_t)(k * n_rows * width),
               data + k * stride, (size_t)(n_rows * width) * sizeof(float));
}

static int parse_type(const char *s, gemfa_weight_type *t)
{
    const char *names[] = {"auto", "f32", "f16", "bf16", "int8"};
    const gemfa_weight_type types[] = {GEMFA_WEIGHTS_AUTO, GEMFA_WEIGHTS_F32, GEMFA_WEIGHTS_F16,
                                       GEMFA_WEIGHTS_BF16, GEMFA_WEIGHTS_INT8};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *t = types[i];
            return 0;
        }
    return -1;
}

static int run(const char *dir, gemfa_weight_type type, const int32_t *ids, size_t n,
               streams *out)
{
    gemfa_model_options *o = NULL;
    gemfa_model *m = NULL;
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    gemfa_status st = gemfa_model_options_new(&o);
    if (st == GEMFA_OK)
        st = gemfa_model_options_set_weights(o, type);
    if (st == GEMFA_OK)
        st = gemfa_model_load(dir, o, &m);
    gemfa_model_options_free(o);
    int64_t L = 0, H = 0;
    if (st == GEMFA_OK) {
        gemfa_model_get(m, GEMFA_PROP_N_LAYERS, &L);
        gemfa_model_get(m, GEMFA_PROP_HIDDEN_SIZE, &H);
        out->n_layers = (int)L;
        out->per_layer = 4 * n * (size_t)H; /* AltUp streams: E2B/E4B have 4 */
        out->data = calloc((size_t)L * out->per_layer, sizeof(float));
        st = out->data ? gemfa_context_new(m, NULL, &ctx) : GEMFA_ERR_OUT_OF_MEMORY;
    }
    if (st == GEMFA_OK) {
        gf_context_set_dump(ctx, collect, out);
        st = gemfa_session_new(ctx, NULL, &s);
    }
    if (st == GEMFA_OK)
        st = gemfa_decode(s, ids, n, NULL);
    if (st != GEMFA_OK)
        fprintf(stderr, "layer_error: %s: %s\n", gemfa_status_name(st), gemfa_last_error());
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
    return st == GEMFA_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    gemfa_weight_type a, b;
    if (argc != 5 || parse_type(argv[2], &a) || parse_type(argv[3], &b)) {
        fprintf(stderr, "usage: layer_error DIR TYPE_A TYPE_B ID,ID,...\n");
        return 2;
    }
    size_t n = 1;
    for (const char *p = argv[4]; *p; p++)
        n += *p == ',';
    int32_t *ids = malloc(n * sizeof *ids);
    char *p = argv[4];
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)strtol(p, &p, 10), p += *p == ',';
    streams x = {0}, y = {0};
    if (run(argv[1], a, ids, n, &x) || run(argv[1], b, ids, n, &y))
        return 1;
    printf("layer  max|a-b|/max|a|  rms(a-b)/rms(a)\n");
    for (int l = 0; l < x.n_layers; l++) {
        double mx = 0, ma = 0, se = 0, sa = 0;
        for (size_t i = 0; i < x.per_layer; i++) {
            const double u = x.data[l * x.per_layer + i], v = y.data[l * y.per_layer + i];
            mx = fmax(mx, fabs(u - v));
            ma = fmax(ma, fabs(u));
            se += (u - v) * (u - v);
            sa += u * u;
        }
        printf("%5d  %15.4g  %15.4g\n", l, mx / ma, sqrt(se / sa));
    }
    free(x.data);
    free(y.data);
    free(ids);
    return 0;
}
