/* state_tool.c — a helper for the cross-process state test
 * (test_state_xproc.py); uses only the public API.
 *   state_tool run    MODEL IDS N STATE LOGITS  decode ids[0..N) in one call, save the
 *                                               state, then decode the rest one by one
 *   state_tool resume MODEL IDS N STATE LOGITS  load the state (its ids must be ids[0..N)),
 *                                               then decode the rest one by one
 *   state_tool save   MODEL IDS N MAXCTX STATE  decode ids[0..N) in a session of MAXCTX
 *                                               tokens and save (fuzz seeds)
 * IDS: a file of comma-separated ids.  LOGITS receives the raw f32 logits
 * of every later step.  Weights: $GEMFA_TEST_WEIGHTS (f32, int8; default
 * as stored).  Exit status 0 on success; errors go to stderr with the
 * status name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemfa.h"

static int fail(const char *what, gemfa_status st)
{
    fprintf(stderr, "state_tool: %s: %s: %s\n", what, gemfa_status_name(st), gemfa_last_error());
    return 1;
}

static int32_t *read_ids(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 64;
    int32_t *ids = malloc(cap * sizeof *ids);
    long v;
    *n = 0;
    while (fscanf(f, " %ld ,", &v) == 1) {
        if (*n == cap)
            ids = realloc(ids, (cap *= 2) * sizeof *ids);
        ids[(*n)++] = (int32_t)v;
    }
    fclose(f);
    return ids;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: state_tool run|resume|save MODEL IDS N (STATE LOGITS | MAXCTX STATE)\n");
        return 2;
    }
    const char *mode = argv[1];
    size_t n_ids;
    int32_t *ids = read_ids(argv[3], &n_ids);
    const size_t N = strtoul(argv[4], NULL, 10);
    if (!ids || N > n_ids) {
        fprintf(stderr, "state_tool: bad ids file or N\n");
        return 2;
    }
    gemfa_model_options *mo;
    gemfa_model *m;
    gemfa_context *ctx;
    gemfa_session *s = NULL;
    gemfa_status st = gemfa_model_options_new(&mo);
    const char *w = getenv("GEMFA_TEST_WEIGHTS");
    if (w && !strcmp(w, "f32"))
        gemfa_model_options_set_weights(mo, GEMFA_WEIGHTS_F32);
    else if (w && !strcmp(w, "int8"))
        gemfa_model_options_set_weights(mo, GEMFA_WEIGHTS_INT8);
    if (st || (st = gemfa_model_load(argv[2], mo, &m)))
        return fail("load model", st);
    gemfa_model_options_free(mo);
    if ((st = gemfa_context_new(m, NULL, &ctx)))
        return fail("context", st);
    if (!strcmp(mode, "save")) {
        gemfa_session_options *so;
        gemfa_session_options_new(&so);
        gemfa_session_options_set_max_context(so, strtoll(argv[5], NULL, 10));
        if ((st = gemfa_session_new(ctx, so, &s)) ||
            (N && (st = gemfa_decode(s, ids, N, NULL))) ||
            (st = gemfa_session_save_file(s, argv[6])))
            return fail("save", st);
        gemfa_session_options_free(so);
    } else if (!strcmp(mode, "run") || !strcmp(mode, "resume")) {
        if (!strcmp(mode, "run")) {
            if ((st = gemfa_session_new(ctx, NULL, &s)) ||
                (N && (st = gemfa_decode(s, ids, N, NULL))) ||
                (st = gemfa_session_save_file(s, argv[5])))
                return fail("run", st);
        } else {
            if ((st = gemfa_session_load_file(ctx, NULL, argv[5], &s)))
                return fail("resume", st);
            const int32_t *got;
            size_t n_got;
            gemfa_session_tokens(s, &got, &n_got);
            if (n_got != N || (N && memcmp(got, ids, N * sizeof *ids))) {
                fprintf(stderr, "state_tool: the loaded tokens differ\n");
                return 1;
            }
        }
        FILE *out = fopen(argv[6], "wb");
        if (!out)
            return 2;
        int64_t V;
        gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &V);
        const float *lg;
        size_t nv;
        gemfa_session_logits(s, &lg, &nv);
        if (lg) /* the restored last logits too */
            fwrite(lg, sizeof(float), (size_t)V, out);
        for (size_t i = N; i < n_ids; i++) {
            if ((st = gemfa_decode(s, ids + i, 1, &lg)))
                return fail("decode", st);
            fwrite(lg, sizeof(float), (size_t)V, out);
        }
        fclose(out);
    } else {
        fprintf(stderr, "state_tool: unknown mode %s\n", mode);
        return 2;
    }
    gemfa_session_free(s);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
    free(ids);
    return 0;
}
