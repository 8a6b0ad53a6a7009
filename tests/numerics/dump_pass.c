/* dump_pass.c — writes every intermediate of one f32 forward pass (the
 * context's dump hook) as raw little-endian float32 files DIR/NAME.bin
 * (NAME as gemma3n_ref.py's --dump keys: "L03.attn_out", "final_hidden",
 * streams [K][rows][H]), so tests/numerics/compare_dump.py can find the first
 * operation where gemfa leaves the float64 reference.  Built, not run as a
 * test.
 *
 *   dump_pass MODEL_DIR OUT_DIR ID,ID,...     (GEMFA_KERNEL_LEVEL applies) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemfa.h"
#include "runtime/context.h"

static void write_dump(void *user, const char *name, int layer, const float *data, int n_streams,
                       int64_t stride, int64_t n_rows, int64_t width)
{
    const char *dir = user;
    char path[4096];
    if (layer >= 0)
        snprintf(path, sizeof path, "%s/L%02d.%s.bin", dir, layer, name);
    else
        snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    for (int k = 0; k < n_streams; k++)
        fwrite(data + k * stride, sizeof(float), (size_t)(n_rows * width), f);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: dump_pass MODEL_DIR OUT_DIR ID,ID,...\n");
        return 2;
    }
    size_t n = 1;
    for (const char *p = argv[3]; *p; p++)
        n += *p == ',';
    int32_t *ids = malloc(n * sizeof *ids);
    char *p = argv[3];
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)strtol(p, &p, 10), p += *p == ',';
    gemfa_model_options *o = NULL;
    gemfa_model *m = NULL;
    gemfa_context *ctx = NULL;
    gemfa_session *s = NULL;
    int64_t V = 0;
    float *logits = NULL;
    gemfa_status st = gemfa_model_options_new(&o);
    if (st == GEMFA_OK)
        st = gemfa_model_options_set_weights(o, GEMFA_WEIGHTS_F32);
    if (st == GEMFA_OK)
        st = gemfa_model_load(argv[1], o, &m);
    gemfa_model_options_free(o);
    if (st == GEMFA_OK) {
        gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &V);
        logits = malloc(n * (size_t)V * sizeof(float));
        st = logits ? gemfa_context_new(m, NULL, &ctx) : GEMFA_ERR_OUT_OF_MEMORY;
    }
    if (st == GEMFA_OK) {
        gf_context_set_dump(ctx, write_dump, argv[2]);
        st = gemfa_session_new(ctx, NULL, &s);
    }
    if (st == GEMFA_OK)
        st = gemfa_decode_all(s, ids, n, logits, n * (size_t)V);
    if (st == GEMFA_OK)
        write_dump(argv[2], "logits", -1, logits, 1, 0, (int64_t)n, V);
    else
        fprintf(stderr, "dump_pass: %s: %s\n", gemfa_status_name(st), gemfa_last_error());
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
    free(logits);
    free(ids);
    return st == GEMFA_OK ? 0 : 1;
}
