/* json_gen.c — constrained generations for the JSON tests: one JSON line per
 * run with the seed, the stop reason ("eog" or "length"), the generated ids
 * and the text as hex (the validators decode and check it themselves).
 *   usage: json_gen MODEL_DIR SCHEMA_FILE|- RUNS FIRST_SEED MAX_TOKENS TEMPERATURE
 * TEMPERATURE 0 is greedy. */
#include <gemfa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, gemfa_status st)
{
    fprintf(stderr, "json_gen: %s: %s: %s\n", what, gemfa_status_name(st), gemfa_last_error());
    exit(1);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s MODEL_DIR SCHEMA_FILE|- RUNS FIRST_SEED MAX_TOKENS TEMP\n",
                argv[0]);
        return 2;
    }
    int runs = atoi(argv[3]), max_tokens = atoi(argv[5]);
    unsigned long long seed0 = strtoull(argv[4], NULL, 10);
    float temp = strtof(argv[6], NULL);
    gemfa_model *model;
    gemfa_status st = gemfa_model_load(argv[1], NULL, &model);
    if (st)
        die("load", st);
    char *schema = NULL;
    size_t schema_len = 0;
    if (strcmp(argv[2], "-") != 0)
        schema = read_all(argv[2], &schema_len);
    gemfa_constraint *c;
    if ((st = gemfa_constraint_new_json(model, schema, schema_len, &c)))
        die("constraint", st);
    gemfa_context *ctx;
    gemfa_session *sess;
    gemfa_sampler *smp;
    if ((st = gemfa_context_new(model, NULL, &ctx)) || (st = gemfa_session_new(ctx, NULL, &sess)) ||
        (st = gemfa_sampler_new(NULL, &smp)))
        die("setup", st);
    gemfa_sampler_set_temperature(smp, temp);
    gemfa_sampler_set_constraint(smp, c);
    int32_t prompt[64];
    size_t n_prompt;
    const char *text = "Answer in JSON:";
    if ((st = gemfa_tokenize(model, text, GEMFA_NUL_TERMINATED, GEMFA_TOKENIZE_DEFAULT, prompt, 64,
                             &n_prompt)))
        die("tokenize", st);
    int32_t *ids = malloc(sizeof *ids * (size_t)(max_tokens + 1));
    char *out = malloc(1 << 20);
    for (int r = 0; r < runs; r++) {
        gemfa_session_reset(sess);
        gemfa_constraint_reset(c);
        gemfa_sampler_set_seed(smp, seed0 + (unsigned long long)r);
        const float *logits;
        if ((st = gemfa_decode(sess, prompt, n_prompt, &logits)))
            die("decode", st);
        int n = 0;
        const char *reason = "length";
        while (n < max_tokens) {
            int32_t id;
            int64_t nv;
            gemfa_model_get(model, GEMFA_PROP_VOCAB_SIZE, &nv);
            if ((st = gemfa_sample(smp, logits, (size_t)nv, NULL, 0, &id)))
                die("sample", st);
            if (gemfa_model_is_eog(model, id)) {
                reason = "eog";
                break;
            }
            ids[n++] = id;
            if (n < max_tokens && (st = gemfa_decode(sess, &id, 1, &logits)))
                die("decode", st);
        }
        size_t len;
        if ((st = gemfa_detokenize(model, ids, (size_t)n, GEMFA_DETOKENIZE_SKIP_SPECIAL, out,
                                   1 << 20, &len)))
            die("detokenize", st);
        printf("{\"seed\": %llu, \"reason\": \"%s\", \"complete\": %d, \"ids\": [", seed0 + (unsigned long long)r,
               reason, gemfa_constraint_is_complete(c));
        for (int i = 0; i < n; i++)
            printf("%s%d", i ? ", " : "", ids[i]);
        printf("], \"hex\": \"");
        for (size_t i = 0; i < len; i++)
            printf("%02x", (unsigned char)out[i]);
        printf("\"}\n");
        fflush(stdout);
    }
    free(ids);
    free(out);
    free(schema);
    gemfa_sampler_free(smp);
    gemfa_constraint_free(c);
    gemfa_session_free(sess);
    gemfa_context_free(ctx);
    gemfa_model_free(model);
    return 0;
}
