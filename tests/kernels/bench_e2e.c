/* bench_e2e.c — end-to-end timing through the public API only (built, not
 * run as a test), until `gemfa bench` exists:
 *
 *   bench_e2e DIR [auto|f32|f16|bf16|int8] [PROMPT_TOKENS] [DECODE_STEPS] [BATCH] [THREADS]
 *
 * Loads the model, decodes a prompt of PROMPT_TOKENS ids (BOS + fixed ids),
 * then DECODE_STEPS single-token steps, then (BATCH > 0) DECODE_STEPS steps
 * of gemfa_decode_batch over BATCH fresh sessions, and prints tokens/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemfa.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define CHECK(call)                                                                  \
    do {                                                                             \
        gemfa_status st_ = (call);                                                   \
        if (st_ != GEMFA_OK) {                                                       \
            fprintf(stderr, "bench_e2e: %s: %s\n", #call, gemfa_last_error());     \
            return 1;                                                                \
        }                                                                            \
    } while (0)

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_e2e DIR [auto|f32|f16|bf16|int8] [PROMPT] [STEPS] [BATCH] [THREADS]\n");
        return 2;
    }
    const char *names[] = {"auto", "f32", "f16", "bf16", "int8"};
    int wt = 0;
    for (int i = 0; argc > 2 && i < 5; i++)
        if (!strcmp(argv[2], names[i]))
            wt = i;
    int P = argc > 3 ? atoi(argv[3]) : 128, N = argc > 4 ? atoi(argv[4]) : 32;
    int B = argc > 5 ? atoi(argv[5]) : 4, T = argc > 6 ? atoi(argv[6]) : 2;
    if (P < 1 || P > 4096 || N < 1 || B < 0 || B > 16 || T < 1) {
        fprintf(stderr, "bench_e2e: PROMPT 1..4096, STEPS >= 1, BATCH 0..16, THREADS >= 1\n");
        return 2;
    }
    gemfa_model_options *mo;
    CHECK(gemfa_model_options_new(&mo));
    CHECK(gemfa_model_options_set_weights(mo, (gemfa_weight_type)wt));
    double t0 = now_s();
    gemfa_model *m;
    CHECK(gemfa_model_load(argv[1], mo, &m));
    double t_load = now_s() - t0;
    gemfa_context_options *co;
    CHECK(gemfa_context_options_new(&co));
    CHECK(gemfa_context_options_set_threads(co, T));
    gemfa_context *ctx;
    CHECK(gemfa_context_new(m, co, &ctx));
    gemfa_session_options *so;
    CHECK(gemfa_session_options_new(&so));
    CHECK(gemfa_session_options_set_max_context(so, (size_t)(P + N + 8)));
    gemfa_session *s;
    CHECK(gemfa_session_new(ctx, so, &s));
    int64_t vocab = 0;
    CHECK(gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &vocab));
#define ID(v) ((int32_t)(3 + (v) % (vocab - 3))) /* ordinary ids of any vocabulary */
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)P);
    for (int i = 0; i < P; i++)
        ids[i] = i ? ID(1000 + i * 37) : 2;
    const float *logits;
    t0 = now_s();
    CHECK(gemfa_decode(s, ids, (size_t)P, &logits));
    double t_prompt = now_s() - t0;
    t0 = now_s();
    for (int i = 0; i < N; i++) {
        int32_t id = ID(3000 + i);
        CHECK(gemfa_decode(s, &id, 1, &logits));
    }
    double t_decode = now_s() - t0;
    printf("weights %s, %d threads: load %.2f s; prompt %d tokens %.2f s = %.1f tok/s; "
           "decode %d steps %.2f s = %.2f tok/s\n",
           names[wt], T, t_load, P, t_prompt, P / t_prompt, N, t_decode, N / t_decode);
    if (B > 0) {
        gemfa_session *ss[16];
        int32_t bid[16];
        for (int b = 0; b < B; b++) {
            CHECK(gemfa_session_new(ctx, so, &ss[b]));
            CHECK(gemfa_decode(ss[b], ids, P < 4 ? (size_t)P : 4, &logits));
        }
        t0 = now_s();
        for (int i = 0; i < N; i++) {
            for (int b = 0; b < B; b++)
                bid[b] = ID(4000 + i + b);
            CHECK(gemfa_decode_batch(ctx, ss, bid, (size_t)B));
        }
        double t_batch = now_s() - t0;
        printf("batch of %d: %d steps %.2f s = %.2f tok/s aggregate (%.2fx one session)\n", B, N,
               t_batch, B * N / t_batch, (B * N / t_batch) / (N / t_decode));
        for (int b = 0; b < B; b++)
            gemfa_session_free(ss[b]);
    }
    free(ids);
    gemfa_session_free(s);
    gemfa_session_options_free(so);
    gemfa_context_free(ctx);
    gemfa_context_options_free(co);
    gemfa_model_free(m);
    gemfa_model_options_free(mo);
    return 0;
}
