/* bench_tokenizer.c — the libgemfa side of bench_tokenizer.sh: load time of
 * a tokenizer directory (vocabulary-only model) and encode time of a text
 * (best of N), in one JSON line; writes the ids for the cross-check.
 * usage: bench_tokenizer DIR TEXT_FILE REPEATS IDS_OUT */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gemfa.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_tokenizer DIR TEXT_FILE REPEATS IDS_OUT\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f)
        return 1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len)
        return 1;
    fclose(f);

    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_set_vocab_only(o, 1);
    double load = 1e9;
    gemfa_model *m = NULL;
    for (int i = 0; i < 3; i++) {
        gemfa_model_free(m);
        double t0 = now();
        gemfa_status st = gemfa_model_load(argv[1], o, &m);
        if (st != GEMFA_OK) {
            fprintf(stderr, "load: %s\n", gemfa_last_error());
            return 1;
        }
        double dt = now() - t0;
        load = dt < load ? dt : load;
    }
    gemfa_model_options_free(o);

    size_t cap = (size_t)len + 16, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    double encode = 1e9;
    for (int i = 0; i < atoi(argv[3]); i++) {
        double t0 = now();
        if (gemfa_tokenize(m, text, (size_t)len, GEMFA_TOKENIZE_DEFAULT, ids, cap, &n) !=
            GEMFA_OK) {
            fprintf(stderr, "tokenize: %s\n", gemfa_last_error());
            return 1;
        }
        double dt = now() - t0;
        encode = dt < encode ? dt : encode;
    }
    FILE *out = fopen(argv[4], "w");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%d\n", ids[i]);
    fclose(out);
    printf("{\"engine\": \"libgemfa-%s\", \"load_s\": %.4f, \"encode_s\": %.4f, \"bytes\": %ld, "
           "\"ids\": %zu}\n", gemfa_version_string(), load, encode, len, n);
    gemfa_model_free(m);
    free(ids);
    free(text);
    return 0;
}
