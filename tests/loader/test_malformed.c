/* test_malformed.c — whole-directory loads of broken copies of the tiny
 * model that the tests make themselves.  Each gives its documented status
 * and a message naming the file, the tensor and expected vs found; the out
 * pointer stays untouched, nothing crashes, nothing leaks (ASan). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "gemfa.h"

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"
#define INDEX "model.safetensors.index.json"
#define UP3 "model.language_model.layers.3.mlp.up_proj.weight"

/* A temp copy of the tiny model in which the files named in `own` are
 * left for the test to write. */
static char *copy_except(const char *const *own)
{
    char *dir = tl_tmpdir();
    tl_link_tiny(dir, own);
    return dir;
}

/* Loads dir (weights `type`) expecting `status` and every needle (NULL
 * terminated) in the message. */
static void expect_load(const char *dir, gemfa_weight_type type, gemfa_status status,
                        const char *const *needles)
{
    gemfa_model_options *o = NULL;
    gemfa_model_options_new(&o);
    gemfa_model_options_set_weights(o, type);
    gemfa_model *m = (gemfa_model *)0x1;
    gemfa_status st = gemfa_model_load(dir, o, &m);
    gemfa_model_options_free(o);
    cr_assert_eq(st, status, "got %s, want %s: %s", gemfa_status_name(st),
                 gemfa_status_name(status), gemfa_last_error());
    cr_assert_eq(m, (gemfa_model *)0x1, "out must stay untouched");
    const char *msg = gemfa_last_error();
    for (size_t i = 0; needles[i]; i++)
        cr_assert(strstr(msg, needles[i]), "message lacks '%s': %s", needles[i], msg);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define OWN(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Writes dir/SHARD2 as the original with its header edited. */
static void edit_shard(const char *dir, const char *shard, const char *from, const char *to)
{
    char *src = tl_path(tl_tiny_dir(), shard), *dst = tl_path(dir, shard);
    tl_rewrite_header(src, dst, from, to);
    free(src);
    free(dst);
}

static void edit_config(const char *dir, const char *path, const char *value)
{
    char *p = tl_path(tl_tiny_dir(), "config.json");
    char *c = tl_read(p, NULL);
    free(p);
    c = value ? tl_json_set(c, path, value) : tl_json_del(c, path);
    tl_write_str(dir, "config.json", c);
    free(c);
}

Test(malformed, truncated_shard)
{
    char *dir = copy_except(OWN(SHARD2));
    char *src = tl_path(tl_tiny_dir(), SHARD2);
    size_t len;
    char *data = tl_read(src, &len);
    tl_write(dir, SHARD2, data, len - 100);
    free(data);
    free(src);
    /* the last tensor of the file no longer fits */
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD2, "tensor '", "past the end of the data section", "truncated"));
    tl_rmtree(dir);
}

Test(malformed, header_length_beyond_the_file)
{
    char *dir = copy_except(OWN(SHARD1));
    char *p = tl_path(dir, SHARD1);
    tl_write_raw_safetensors(p, "{\"a\": 1}", 10, 5000);
    free(p);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD1, "header length 5000 reaches past the end of the file", "18 bytes"));
    tl_rmtree(dir);
}

Test(malformed, broken_header_json)
{
    char *dir = copy_except(OWN(SHARD1));
    edit_shard(dir, SHARD1, "\"dtype\":", "\"dtype\"");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD1, "header", "invalid JSON near byte"));
    tl_rmtree(dir);
}

Test(malformed, offsets_past_the_end)
{
    char *dir = copy_except(OWN(SHARD1));
    /* embed_tokens: [1024, 64] bf16 at [0, 131072) */
    edit_shard(dir, SHARD1, "\"data_offsets\":[0,131072]", "\"data_offsets\":[99000000,99131072]");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD1, "tensor 'model.language_model.embed_tokens.weight'",
                        "[99000000, 99131072]", "past the end"));
    tl_rmtree(dir);
}

Test(malformed, overlapping_tensors)
{
    char *dir = copy_except(OWN(SHARD1));
    edit_shard(dir, SHARD1, "\"data_offsets\":[0,131072]", "\"data_offsets\":[2,131074]");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD1, "overlap", "model.language_model.embed_tokens.weight"));
    tl_rmtree(dir);
}

Test(malformed, shape_disagrees_with_bytes)
{
    char *dir = copy_except(OWN(SHARD1));
    edit_shard(dir, SHARD1, "\"shape\":[1024,64]", "\"shape\":[1024,65]");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES("embed_tokens.weight", "need 133120 bytes", "hold 131072"));
    tl_rmtree(dir);
}

Test(malformed, missing_tensor)
{
    /* renamed in the shard and in the index: consistent files, one tensor short */
    char *dir = copy_except(OWN(SHARD1, SHARD2, INDEX));
    char *ip = tl_path(tl_tiny_dir(), INDEX);
    char *idx = tl_read(ip, NULL);
    free(ip);
    idx = tl_replace(idx, "\"" UP3 "\"", "\"model.language_model.layers.3.mlp.up_proj.weigh_\"");
    tl_write_str(dir, INDEX, idx);
    free(idx);
    char *s1 = tl_path(tl_tiny_dir(), SHARD1), *s2 = tl_path(tl_tiny_dir(), SHARD2);
    char *d1 = tl_path(dir, SHARD1), *d2 = tl_path(dir, SHARD2);
    /* the tensor lives in one of the two shards */
    char *h1 = tl_read(s1, NULL);
    int in_first = strstr(h1 + 8, UP3) != NULL;
    free(h1);
    tl_rewrite_header(in_first ? s1 : s2, in_first ? d1 : d2, "\"" UP3 "\"", "\"model.language_model.layers.3.mlp.up_proj.weigh_\"");
    cr_assert_eq(symlink(in_first ? s2 : s1, in_first ? d2 : d1), 0);
    free(s1);
    free(s2);
    free(d1);
    free(d2);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_TENSOR_MISSING,
                NEEDLES(INDEX, "tensor '" UP3 "' is missing"));
    tl_rmtree(dir);
}

Test(malformed, index_lists_a_tensor_its_shard_lacks)
{
    char *dir = copy_except(OWN(INDEX));
    char *ip = tl_path(tl_tiny_dir(), INDEX);
    char *idx = tl_read(ip, NULL);
    free(ip);
    idx = tl_replace(idx, "\"weight_map\": {", "\"weight_map\": {\"model.ghost.weight\": \"" SHARD1 "\", ");
    tl_write_str(dir, INDEX, idx);
    free(idx);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(INDEX, "tensor 'model.ghost.weight'", SHARD1, "does not contain it"));
    tl_rmtree(dir);
}

Test(malformed, config_disagrees_with_tensors)
{
    char *dir = copy_except(OWN("config.json"));
    /* wider FFN than stored */
    edit_config(dir, "text_config.intermediate_size", "256");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_TENSOR_SHAPE,
                NEEDLES(SHARD1, "tensor 'model.language_model.layers.0.mlp.gate_proj.weight'",
                        "expected shape [256, 64]", "found [128, 64]", "intermediate_size[0]"));
    /* more layers than stored */
    char *c = tl_path(dir, "config.json");
    unlink(c);
    free(c);
    edit_config(dir, "text_config.num_hidden_layers", "26");
    /* the per-layer lists then have the wrong length: a CONFIG error first */
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_CONFIG,
                NEEDLES("config.json", "intermediate_size", "expected 26 entries", "found 25"));
    tl_rmtree(dir);

    dir = copy_except(OWN("config.json"));
    {
        char *p = tl_path(tl_tiny_dir(), "config.json");
        char *t = tl_read(p, NULL);
        free(p);
        t = tl_json_set(t, "text_config.num_hidden_layers", "30");
        t = tl_json_set(t, "text_config.intermediate_size", "128");
        t = tl_json_del(t, "text_config.layer_types");
        t = tl_json_del(t, "text_config.activation_sparsity_pattern");
        tl_write_str(dir, "config.json", t);
        free(t);
    }
    /* the per-layer table's width (layers x P) gives it away first */
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_TENSOR_SHAPE,
                NEEDLES(SHARD1, "embed_tokens_per_layer.weight", "expected shape [1022, 240]",
                        "found [1022, 200]"));
    tl_rmtree(dir);

    dir = copy_except(OWN("config.json"));
    {
        char *p = tl_path(tl_tiny_dir(), "config.json");
        char *t = tl_read(p, NULL);
        free(p);
        t = tl_json_set(t, "text_config.num_hidden_layers", "20");
        t = tl_json_set(t, "text_config.intermediate_size", "128");
        t = tl_json_del(t, "text_config.layer_types");
        t = tl_json_del(t, "text_config.activation_sparsity_pattern");
        tl_write_str(dir, "config.json", t);
        free(t);
    }
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_CONFIG,
                NEEDLES("num_hidden_layers 20", "model.language_model.layers.2", "layer 2"));
    tl_rmtree(dir);

    dir = copy_except(OWN("config.json"));
    edit_config(dir, "text_config.hidden_size", "128");
    expect_load(dir, GEMFA_WEIGHTS_INT8, GEMFA_ERR_TENSOR_SHAPE,
                NEEDLES("embed_tokens.weight", "expected shape [1024, 128]", "found [1024, 64]"));
    tl_rmtree(dir);

    dir = copy_except(OWN("config.json"));
    edit_config(dir, "text_config.vocab_size", "1000"); /* fewer than embed_tokens' rows */
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_TENSOR_SHAPE,
                NEEDLES("embed_tokens.weight", "1000", "found [1024, 64]"));
    tl_rmtree(dir);
}

Test(malformed, config_file)
{
    char *dir = copy_except(OWN("config.json"));
    char *cfg = tl_path(dir, "config.json");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_NOT_FOUND,
                NEEDLES(cfg, "cannot open", "No such file"));
    /* a dangling symlink: the file it names is not there */
    cr_assert_eq(symlink("gone.json", cfg), 0);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_NOT_FOUND, NEEDLES(cfg, "cannot open"));
    unlink(cfg);
    /* other open failures stay IO: a symlink loop (ELOOP) */
    cr_assert_eq(symlink("config.json", cfg), 0);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_IO, NEEDLES(cfg, "cannot open"));
    unlink(cfg);
    free(cfg);
    tl_write_str(dir, "config.json", "{\"text_config\": {\"hidden_size\": 64,");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES("config.json", "invalid JSON near byte"));
    char *p = tl_path(dir, "config.json");
    unlink(p);
    tl_write_str(dir, "config.json", "");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT, NEEDLES("config.json", "empty"));
    unlink(p);
    tl_write_str(dir, "config.json", "\"gemma\"");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_CONFIG,
                NEEDLES("config.json", "expected a JSON object"));
    unlink(p);
    tl_write_str(dir, "config.json", "{\"model_type\": \"gemma3n\", \"text_config\": {\"hidden_size\": -64}}");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_CONFIG,
                NEEDLES("config.json", "text_config.hidden_size", "found -64"));
    free(p);
    tl_rmtree(dir);
}

Test(malformed, index_names_a_missing_shard)
{
    char *dir = copy_except(OWN(SHARD2));
    char *shard = tl_path(dir, SHARD2);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_NOT_FOUND,
                NEEDLES(INDEX, "names shard '" SHARD2 "'", shard, "cannot open", "No such file"));
    /* the shard exists but cannot be opened: IO */
    cr_assert_eq(symlink(SHARD2, shard), 0);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_IO, NEEDLES(shard, "cannot open"));
    unlink(shard);
    free(shard);
    tl_rmtree(dir);

    dir = copy_except(OWN(INDEX));
    tl_write_str(dir, INDEX, "{\"weight_map\": {\"x\": \"../etc/passwd\"}}");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(INDEX, "weight_map[\"x\"]", "../etc/passwd"));
    char *p = tl_path(dir, INDEX);
    unlink(p);
    tl_write_str(dir, INDEX, "{\"metadata\": {}}");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT, NEEDLES(INDEX, "weight_map"));
    unlink(p);
    tl_write_str(dir, INDEX, "{\"weight_map\": ");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT, NEEDLES(INDEX, "invalid JSON"));
    free(p);
    tl_rmtree(dir);

    /* no weights at all */
    dir = copy_except(OWN(INDEX, SHARD1, SHARD2));
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_NOT_FOUND,
                NEEDLES(dir, "no weights", "model.safetensors.index.json", "model.safetensors"));
    tl_rmtree(dir);
}

Test(malformed, dtypes)
{
    char *dir = copy_except(OWN(SHARD1));
    edit_shard(dir, SHARD1, "\"dtype\":\"BF16\"", "\"dtype\":\"BF17\"");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD1, "unknown dtype \"BF17\"", "tensor '"));
    tl_rmtree(dir);
    /* a valid safetensors dtype the decoder cannot use */
    dir = copy_except(OWN(SHARD1));
    edit_shard(dir, SHARD1,
               "\"model.language_model.embed_tokens.weight\":{\"dtype\":\"BF16\"",
               "\"model.language_model.embed_tokens.weight\":{\"dtype\":\"I16\"");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_TENSOR_SHAPE,
                NEEDLES(SHARD1, "embed_tokens.weight", "dtype I16 cannot be used",
                        "BF16, F16 or F32"));
    tl_rmtree(dir);
}

Test(malformed, empty_shard)
{
    char *dir = copy_except(OWN(SHARD2));
    tl_write(dir, SHARD2, "", 0);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT, NEEDLES(SHARD2, "empty file"));
    tl_rmtree(dir);
}

Test(malformed, negative_and_absurd_sizes)
{
    char *dir = copy_except(OWN(SHARD1));
    edit_shard(dir, SHARD1, "\"shape\":[1024,64]", "\"shape\":[-1024,64]");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD1, "embed_tokens.weight", "shape[0]", "negative"));
    tl_rmtree(dir);
    dir = copy_except(OWN(SHARD1));
    edit_shard(dir, SHARD1, "\"shape\":[1024,64]", "\"shape\":[4611686018427387904,64]");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD1, "embed_tokens.weight", "overflows"));
    tl_rmtree(dir);
    dir = copy_except(OWN(SHARD1));
    edit_shard(dir, SHARD1, "\"data_offsets\":[0,131072]", "\"data_offsets\":[0,-131072]");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES(SHARD1, "embed_tokens.weight", "negative"));
    tl_rmtree(dir);
    dir = copy_except(OWN("config.json"));
    edit_config(dir, "text_config.vocab_size", "99999999999");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_CONFIG,
                NEEDLES("text_config.vocab_size", "99999999999"));
    tl_rmtree(dir);
}

Test(malformed, generation_config)
{
    char *dir = copy_except(OWN("generation_config.json"));
    tl_write_str(dir, "generation_config.json", "{\"top_k\": ");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_FORMAT,
                NEEDLES("generation_config.json", "invalid JSON"));
    char *p = tl_path(dir, "generation_config.json");
    unlink(p);
    free(p);
    /* bad values are ignored (with a warning); eos ids fall back to config.json */
    gemfa_set_log_callback(NULL, NULL, GEMFA_LOG_ERROR);
    tl_write_str(dir, "generation_config.json",
                 "{\"top_k\": -3, \"top_p\": 2, \"temperature\": \"hot\", \"do_sample\": 1, "
                 "\"eos_token_id\": null}");
    gemfa_model *m = NULL;
    cr_assert_eq(gemfa_model_load(dir, NULL, &m), GEMFA_OK, "%s", gemfa_last_error());
    int32_t ids[4];
    size_t n;
    cr_assert_eq(gemfa_model_eog_ids(m, ids, 4, &n), GEMFA_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[1], 7);
    gemfa_model_free(m);
    tl_rmtree(dir);
}

Test(malformed, not_a_checkpoint)
{
    char *dir = tl_tmpdir();
    char *sub = tl_path(dir, "config.json");
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_NOT_FOUND, NEEDLES(sub));
    cr_assert_eq(mkdir(sub, 0700), 0);
    expect_load(dir, GEMFA_WEIGHTS_AUTO, GEMFA_ERR_IO, NEEDLES("config.json", "not a regular file"));
    rmdir(sub);
    free(sub);
    tl_rmtree(dir);
}
