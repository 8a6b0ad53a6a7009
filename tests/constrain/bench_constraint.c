/* bench_constraint.c — per-token mask cost of the JSON constraint on a real
 * vocabulary (docs/performance.md).
 *   usage: bench_constraint TOKENIZER_DIR [ROUNDS] [wall]
 * Per-step times use the thread's CPU clock, or the wall clock with "wall".
 * For "any JSON" and for a schema: creation time, then the time of every
 * mask along (1) JSON documents tokenized by the tokenizer itself (teacher
 * forcing, as a model writing them would see) and (2) random walks that
 * pick allowed tokens; median, p99 and max over all steps, the first
 * (cold) mask, cache hits and misses; and gemfa_sample on 262k logits with
 * and without the constraint. */
#include <gemfa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "constrain/constraint.h"
#include "sampling/rng.h"

/* Masks are timed on the thread's CPU clock: on a shared machine the wall
 * clock adds whatever time slices other processes took (the plain sampler's
 * wall-clock line below shows how much). */
static clockid_t step_clock = CLOCK_THREAD_CPUTIME_ID;

static double clock_ms(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
static double step_ms(void) { return clock_ms(step_clock); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *docs[] = {
    "{\"name\": \"سارا احمدی\", \"age\": 34, \"city\": \"تهران\", \"tags\": [\"کتاب\", \"music\", "
    "\"سفر\"], \"ok\": true}",
    "{\"title\":\"The history of Iran\",\"summary\":\"ایران یکی از قدیمی‌ترین تمدن‌های جهان "
    "است و تاریخ آن به هزاران سال پیش بازمی‌گردد.\",\"year\":-550,\"score\":0.875}",
    "[{\"id\": 1, \"value\": 3.14159, \"label\": \"pi\"}, {\"id\": 2, \"value\": 2.71828, "
    "\"label\": \"e\"}, {\"id\": 3, \"value\": null, \"label\": \"none\"}]",
    "{\"answer\":\"The capital of France is Paris. It is known for the Eiffel Tower, the "
    "Louvre museum and its cafés.\",\"confidence\":0.92,\"sources\":[\"wikipedia\",\"britannica\"]}",
    "{\"user\":{\"name\":\"Ali\",\"email\":\"ali@example.com\",\"roles\":[\"admin\",\"editor\"]},"
    "\"settings\":{\"theme\":\"dark\",\"lang\":\"fa\",\"notifications\":false},\"count\":12}",
};

static const char *schema =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":40},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},\"city\":{\"type\":\"string\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":20},\"maxItems\":8},"
    "\"ok\":{\"type\":\"boolean\"}},\"required\":[\"name\",\"age\"]}";

typedef struct times {
    double *v;
    size_t n, cap;
} times;

static void add(times *t, double ms)
{
    if (t->n == t->cap)
        t->v = realloc(t->v, (t->cap = t->cap ? 2 * t->cap : 1024) * sizeof *t->v);
    t->v[t->n++] = ms;
}

static void report(const char *what, times *t)
{
    if (t->n == 0)
        return;
    qsort(t->v, t->n, sizeof *t->v, cmp_double);
    printf("  %-28s steps %6zu  median %.3f ms  p99 %.3f ms  max %.3f ms\n", what, t->n,
           t->v[t->n / 2], t->v[(size_t)((double)t->n * 0.99)], t->v[t->n - 1]);
}

static void run(gemfa_model *model, const char *name, const char *sch, int rounds)
{
    printf("%s\n", name);
    double t0 = now_ms(), cpu0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
    gemfa_constraint *c;
    if (gemfa_constraint_new_json(model, sch, GEMFA_NUL_TERMINATED, &c)) {
        printf("  error: %s\n", gemfa_last_error());
        return;
    }
    printf("  create %.1f ms wall, %.1f ms CPU (trie %zu nodes, %zu tokens, longest %u bytes)\n",
           now_ms() - t0, clock_ms(CLOCK_PROCESS_CPUTIME_ID) - cpu0, c->trie.n_nodes,
           c->trie.n_ids, c->trie.max_len);
    const uint64_t *bits;
    t0 = now_ms();
    gf_constraint_bits(c, &bits);
    printf("  first mask (cold) %.3f ms\n", now_ms() - t0);

    times forced = {0}, walk = {0};
    int32_t ids[1024];
    for (int r = 0; r < rounds; r++) {
        for (size_t d = 0; d < sizeof docs / sizeof *docs; d++) {
            size_t n;
            gemfa_tokenize(model, docs[d], GEMFA_NUL_TERMINATED, 0, ids, 1024, &n);
            gemfa_constraint_reset(c);
            for (size_t i = 0; i < n; i++) {
                double a = step_ms();
                gf_constraint_bits(c, &bits);
                add(&forced, step_ms() - a);
                if (gemfa_constraint_accept(c, ids[i]) != GEMFA_OK)
                    break; /* the document is outside the schema here */
            }
        }
    }
    /* random walks: uniform over allowed tokens, short tokens half the time */
    size_t nv = gf_constraint_n_vocab(c);
    int32_t *pick = malloc(nv * sizeof *pick);
    gf_rng rng;
    gf_rng_seed(&rng, 1);
    for (int r = 0; r < 20 * rounds; r++) {
        gemfa_constraint_reset(c);
        for (int step = 0; step < 200; step++) {
            double a = step_ms();
            gf_constraint_bits(c, &bits);
            add(&walk, step_ms() - a);
            size_t n = 0;
            for (size_t i = 0; i < nv; i++)
                if ((bits[i >> 6] >> (i & 63)) & 1)
                    pick[n++] = (int32_t)i;
            if (n == 0)
                break;
            int32_t id = pick[(size_t)(gf_rng_uniform(&rng) * (double)n)];
            if (gf_rng_uniform(&rng) < 0.5)
                for (int k = 0; k < 20; k++) {
                    int32_t t2 = pick[(size_t)(gf_rng_uniform(&rng) * (double)n)];
                    if (c->trie.off[t2 + 1] - c->trie.off[t2] <= 2) {
                        id = t2;
                        break;
                    }
                }
            gemfa_constraint_accept(c, id);
            if (gemfa_constraint_is_complete(c) && gf_rng_uniform(&rng) < 0.3)
                break;
        }
    }
    report("documents (teacher forced)", &forced);
    report("random walks", &walk);
    printf("  cache: %zu hits, %zu misses\n", c->cache.hits, c->cache.misses);

    /* the sampler: 262k logits, top-k 64 / top-p 0.95, with and without */
    float *logits = malloc(nv * sizeof *logits);
    for (size_t i = 0; i < nv; i++)
        logits[i] = (float)(gf_rng_uniform(&rng) * 10.0);
    gemfa_sampler *s;
    gemfa_sampler_new(NULL, &s);
    gemfa_sampler_set_top_k(s, 64);
    gemfa_sampler_set_top_p(s, 0.95f);
    times plain = {0}, constrained = {0};
    for (int k = 0; k < 200; k++) {
        int32_t id;
        double a = step_ms();
        gemfa_sample(s, logits, nv, NULL, 0, &id);
        add(&plain, step_ms() - a);
    }
    gemfa_sampler_set_constraint(s, c);
    for (int k = 0; k < 200; k++) {
        int32_t id;
        gemfa_constraint_reset(c); /* the start state each time: a cache hit */
        double a = step_ms();
        gemfa_sample(s, logits, nv, NULL, 0, &id);
        add(&constrained, step_ms() - a);
    }
    report("gemfa_sample, no constraint", &plain);
    report("gemfa_sample + constraint", &constrained);
    gemfa_sampler_free(s);
    free(logits);
    free(pick);
    free(forced.v);
    free(walk.v);
    free(plain.v);
    free(constrained.v);
    gemfa_constraint_free(c);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TOKENIZER_DIR [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (argc > 3 && strcmp(argv[3], "wall") == 0)
        step_clock = CLOCK_MONOTONIC;
    printf("per-step times: %s clock\n", step_clock == CLOCK_MONOTONIC ? "wall" : "thread CPU");
    gemfa_model_options *o;
    gemfa_model_options_new(&o);
    gemfa_model_options_set_vocab_only(o, 1);
    gemfa_model *model;
    if (gemfa_model_load(argv[1], o, &model)) {
        fprintf(stderr, "%s\n", gemfa_last_error());
        return 1;
    }
    gemfa_model_options_free(o);
    run(model, "any JSON", NULL, rounds);
    run(model, "schema", schema, rounds);
    gemfa_model_free(model);
    return 0;
}
