/* generation.c — generation_config.json: sampling defaults and the
 * end-of-generation ids. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/status.h"
#include "loader/config.h"
#include "loader/load.h"

/* A sampling default is advice: a bad value is ignored with a warning
 * rather than failing the load. */
static int read_number(const gf_json *gen, const char *key, double min, int min_open, double max,
                       const char *path, double *out)
{
    const gf_json *j = gf_json_get(gen, key);
    if (!j || j->type == GF_JSON_NULL)
        return 0;
    double v;
    if (!gf_json_as_double(j, &v) || !isfinite(v) || v < min || (min_open && v == min) ||
        v > max) {
        gf_log(GEMFA_LOG_WARN, "%s: ignoring %s: expected a number in %c%g, %g]", path, key,
               min_open ? '(' : '[', min, max);
        return 0;
    }
    *out = v;
    return 1;
}

static void read_defaults(const gf_json *gen, const char *path, gf_generation_defaults *g)
{
    double v;
    const gf_json *ds = gf_json_get(gen, "do_sample");
    if (ds && ds->type != GF_JSON_NULL) {
        if (gf_json_as_bool(ds, &g->do_sample))
            g->has_do_sample = 1;
        else
            gf_log(GEMFA_LOG_WARN, "%s: ignoring do_sample: expected true or false", path);
    }
    if ((g->has_temperature = read_number(gen, "temperature", 0, 0, 1e6, path, &v)))
        g->temperature = (float)v;
    if ((g->has_top_k = read_number(gen, "top_k", 0, 0, 2147483647.0, path, &v))) {
        if (v != floor(v)) {
            g->has_top_k = 0;
            gf_log(GEMFA_LOG_WARN, "%s: ignoring top_k: expected an integer", path);
        } else {
            g->top_k = (int32_t)v;
        }
    }
    if ((g->has_top_p = read_number(gen, "top_p", 0, 1, 1, path, &v)))
        g->top_p = (float)v;
    if ((g->has_min_p = read_number(gen, "min_p", 0, 0, 1, path, &v)))
        g->min_p = (float)v;
    if ((g->has_repetition_penalty = read_number(gen, "repetition_penalty", 0, 1, 1e6, path, &v)))
        g->repetition_penalty = (float)v;
}

/* Keeps ids inside [0, vocab) (vocab <= 0: all). */
static void keep_in_vocab(int32_t *ids, size_t *n, int64_t vocab)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (vocab <= 0 || ids[i] < vocab)
            ids[k++] = ids[i];
    *n = k;
}

gemfa_status gf_generation_load(const char *dir, const gf_json *config, int64_t vocab,
                                gemfa_model *m)
{
    char *path = gf_path_join(dir, "generation_config.json");
    if (!path)
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "out of memory");

    gf_json *gen = NULL;
    gemfa_status st = GEMFA_OK;
    if (access(path, F_OK) == 0) {
        char *text = NULL;
        size_t len = 0;
        st = gf_read_file(path, (size_t)4 << 20, &text, &len);
        if (st == GEMFA_OK) {
            st = gf_json_parse(text, len, path, &gen);
            gf_free(text);
        }
        if (st == GEMFA_OK && gen->type != GF_JSON_OBJECT)
            st = gf_error(GEMFA_ERR_FORMAT, "%s: expected a JSON object", path);
    }
    if (st == GEMFA_OK && gen)
        read_defaults(gen, path, &m->gen);

    int32_t *ids = NULL;
    size_t n = 0;
    /* generation_config.json, else config.json's root, then text_config */
    const gf_json *sources[3] = {gf_json_get(gen, "eos_token_id"),
                                 gf_json_get(config, "eos_token_id"),
                                 gf_json_get(gf_config_text_section(config), "eos_token_id")};
    for (int i = 0; i < 3 && st == GEMFA_OK && n == 0; i++) {
        gf_free(ids);
        st = gf_config_id_list(sources[i], &ids, &n);
        if (st == GEMFA_OK)
            keep_in_vocab(ids, &n, vocab);
    }
    if (st == GEMFA_OK) {
        m->eog_ids = n ? ids : NULL;
        m->n_eog_ids = n;
        if (!n)
            gf_free(ids);
    } else {
        gf_free(ids);
    }
    gf_json_free(gen);
    gf_free(path);
    return st;
}
