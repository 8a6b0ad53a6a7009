/* test_hostile.c — hostile arguments through every function of gemfa.h:
 * NULLs, zero and huge lengths, out-of-range ids and enums, negative sizes,
 * NaN/inf settings, a full context, invalid UTF-8, chats with roles out of
 * order, handles of the wrong kind (no tokenizer, vocabulary only, another
 * context).  Table-driven: each case names the call, the status gemfa.h
 * documents for it, and words its message must contain; every case also
 * checks that the message is not empty and that no out-parameter was
 * written on failure (except the size a BUFFER_TOO_SMALL reports).
 * Functions that cannot fail are checked in their own tests below. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rel_common.h"

/* Sentinels: an out-parameter still holding one was not written. */
#define S_I64 ((int64_t)0x5151515151515151)
#define S_SIZE ((size_t)0x5252525252525252)
#define S_I32 ((int32_t)0x53535353)
#define S_PTR ((void *)(uintptr_t)0x5454)
#define S_F ((float)-12345.0f)

typedef struct fx {
    gemfa_model *m;        /* tiny, full */
    gemfa_model *vocab;    /* tiny, vocabulary only */
    gemfa_model *notok;    /* tiny weights, no tokenizer files */
    gemfa_context *ctx, *ctx2;
    gemfa_session *s, *s_full, *s2; /* s2 belongs to ctx2 */
    gemfa_sampler *smp;
    gemfa_detok_stream *ds;
    gemfa_model_options *mo;
    gemfa_context_options *co;
    gemfa_session_options *so;
    char notok_dir[256], empty_dir[256], fifo_dir[256];
    int64_t vocab_size;
    /* out-parameters, reset to the sentinels before each case */
    int64_t i64;
    size_t sz;
    int32_t i32;
    int i;
    float f;
    const void *p;
    gemfa_model *model_out;
    gemfa_context *ctx_out;
    gemfa_session *session_out;
    gemfa_sampler *sampler_out;
    gemfa_detok_stream *stream_out;
    gemfa_model_options *mo_out;
    gemfa_context_options *co_out;
    gemfa_session_options *so_out;
    gemfa_layer_type lt;
    char buf[64];
    int32_t ids[8];
    float logits[16];
} fx;

static fx F;

static void link_into(const char *dir, const char *name)
{
    char from[4096], to[512];
    snprintf(from, sizeof from, "%s/%s", rel_tiny_dir(), name);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    cr_assert_eq(symlink(from, to), 0, "symlink %s", to);
}

static void setup(void)
{
    memset(&F, 0, sizeof F);
    F.m = rel_load(GEMFA_WEIGHTS_AUTO);
    gemfa_model_options *o;
    cr_assert_eq(gemfa_model_options_new(&o), GEMFA_OK);
    gemfa_model_options_set_vocab_only(o, 1);
    cr_assert_eq(gemfa_model_load(rel_tiny_dir(), o, &F.vocab), GEMFA_OK);
    gemfa_model_options_free(o);
    /* the weights without tokenizer files */
    strcpy(F.notok_dir, "/tmp/gemfa-hostile-XXXXXX");
    cr_assert_not_null(mkdtemp(F.notok_dir));
    const char *files[] = {"config.json", "model.safetensors.index.json",
                           "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (size_t i = 0; i < 4; i++)
        link_into(F.notok_dir, files[i]);
    cr_assert_eq(gemfa_model_load(F.notok_dir, NULL, &F.notok), GEMFA_OK, "%s",
                 gemfa_last_error());
    strcpy(F.empty_dir, "/tmp/gemfa-hostile-XXXXXX");
    cr_assert_not_null(mkdtemp(F.empty_dir));
    /* a directory whose config.json is a FIFO nobody writes: must not hang */
    strcpy(F.fifo_dir, "/tmp/gemfa-hostile-XXXXXX");
    cr_assert_not_null(mkdtemp(F.fifo_dir));
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/config.json", F.fifo_dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    link_into(F.fifo_dir, "tokenizer.json");

    F.ctx = rel_context(F.m, 1, NULL, NULL);
    F.ctx2 = rel_context(F.m, 1, NULL, NULL);
    cr_assert_eq(gemfa_session_options_new(&F.so), GEMFA_OK);
    cr_assert_eq(gemfa_session_options_set_max_context(F.so, 4), GEMFA_OK);
    cr_assert_eq(gemfa_session_new(F.ctx, NULL, &F.s), GEMFA_OK);
    cr_assert_eq(gemfa_session_new(F.ctx, F.so, &F.s_full), GEMFA_OK);
    cr_assert_eq(gemfa_session_new(F.ctx2, NULL, &F.s2), GEMFA_OK);
    int32_t four[4] = {2, 10, 11, 12};
    cr_assert_eq(gemfa_decode(F.s_full, four, 4, NULL), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_new(NULL, &F.smp), GEMFA_OK);
    cr_assert_eq(gemfa_detok_stream_new(F.m, 0, &F.ds), GEMFA_OK);
    cr_assert_eq(gemfa_model_options_new(&F.mo), GEMFA_OK);
    cr_assert_eq(gemfa_context_options_new(&F.co), GEMFA_OK);
    gemfa_model_get(F.m, GEMFA_PROP_VOCAB_SIZE, &F.vocab_size);
}

static void teardown(void)
{
    gemfa_detok_stream_free(F.ds);
    gemfa_sampler_free(F.smp);
    gemfa_session_free(F.s);
    gemfa_session_free(F.s_full);
    gemfa_session_free(F.s2);
    gemfa_context_free(F.ctx);
    gemfa_context_free(F.ctx2);
    gemfa_model_options_free(F.mo);
    gemfa_context_options_free(F.co);
    gemfa_session_options_free(F.so);
    gemfa_model_free(F.m);
    gemfa_model_free(F.vocab);
    gemfa_model_free(F.notok);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", F.notok_dir, F.empty_dir, F.fifo_dir);
    cr_expect_eq(system(cmd), 0);
}

static void reset_outs(fx *f)
{
    f->i64 = S_I64;
    f->sz = S_SIZE;
    f->i32 = S_I32;
    f->i = (int)S_I32;
    f->f = S_F;
    f->p = S_PTR;
    f->model_out = S_PTR;
    f->ctx_out = S_PTR;
    f->session_out = S_PTR;
    f->sampler_out = S_PTR;
    f->stream_out = S_PTR;
    f->mo_out = S_PTR;
    f->co_out = S_PTR;
    f->so_out = S_PTR;
    f->lt = (gemfa_layer_type)S_I32;
    memset(f->buf, 0x55, sizeof f->buf);
    for (int k = 0; k < 8; k++)
        f->ids[k] = S_I32;
    for (int k = 0; k < 16; k++)
        f->logits[k] = S_F;
}

/* Which out-parameters a failed call wrote (NULL: none). */
static const char *written(const fx *f, gemfa_status st)
{
    if (f->i64 != S_I64) return "an int64 out";
    if (f->sz != S_SIZE && st != GEMFA_ERR_BUFFER_TOO_SMALL) return "a size out";
    if (f->i32 != S_I32) return "an int32 out";
    if (f->i != (int)S_I32) return "an int out";
    if (f->f != S_F) return "a float out";
    if (f->p != S_PTR) return "a pointer out";
    if (f->model_out != S_PTR || f->ctx_out != S_PTR || f->session_out != S_PTR ||
        f->sampler_out != S_PTR || f->stream_out != S_PTR || f->mo_out != S_PTR ||
        f->co_out != S_PTR || f->so_out != S_PTR)
        return "a handle out";
    if (f->lt != (gemfa_layer_type)S_I32) return "the layer type";
    for (int k = 0; k < 8; k++)
        if (f->ids[k] != S_I32) return "the ids buffer";
    for (size_t k = 0; k < sizeof f->buf; k++)
        if (f->buf[k] != 0x55) return "the text buffer";
    return NULL;
}

static const char bad_utf8[] = "ok \xC3\x28 then \xED\xA0\x80"; /* byte 3 is bad */
static const gemfa_message bad_role_msg = {"us\xFFr", "hi", GEMFA_NUL_TERMINATED};
static const gemfa_message bad_content_msg = {"user", bad_utf8, sizeof bad_utf8 - 1};
static const gemfa_message null_role_msg = {NULL, "hi", 2};
static const gemfa_message null_content_msg = {"user", NULL, 3};
static const gemfa_message user_msg = {"user", "hi", 2};
static const gemfa_message out_of_order[2] = {{"user", "a", 1}, {"user", "b", 1}};
static const gemfa_message assistant_first[1] = {{"assistant", "a", 1}};
static const gemfa_message system_second[2] = {{"user", "a", 1}, {"system", "b", 1}};
static const gemfa_message system_then_model[2] = {{"system", "a", 1}, {"model", "b", 1}};
static const int32_t good_ids[2] = {2, 10};
static const int32_t neg_id[2] = {2, -1};
static const float nan_logits[4] = {NAN, -INFINITY, NAN, -INFINITY};
static const float four_logits[4] = {1, 2, 3, 4};
static const int32_t bad_history[2] = {1, 99};
static const char *const one_stop[1] = {"a"};
static const char *const null_stop[2] = {"a", NULL};
static const char *const empty_stop[2] = {"a", ""};
static const char *const bad_stop[1] = {bad_utf8};
#define STOP_OUT(f) ((gemfa_stop_matcher **)(void *)&(f)->p)
#define CON_OUT(f) ((gemfa_constraint **)(void *)&(f)->p)

/* A call on a fresh "any JSON" constraint of the tiny model. */
#define WITH_CONSTRAINT(name, expr)                                                   \
    static gemfa_status name(fx *f)                                                   \
    {                                                                                 \
        gemfa_constraint *c;                                                          \
        cr_assert_eq(gemfa_constraint_new_json(f->m, NULL, 0, &c), GEMFA_OK);         \
        gemfa_status st = (expr);                                                     \
        cr_assert_eq(gemfa_constraint_is_complete(c), 0, "the constraint moved");    \
        gemfa_constraint_free(c);                                                     \
        return st;                                                                    \
    }
static gemfa_status sample_constrained(gemfa_constraint *c, size_t n_vocab, fx *f)
{
    gemfa_sampler *s;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_constraint(s, c), GEMFA_OK);
    float *l = calloc(n_vocab, sizeof *l);
    gemfa_status st = gemfa_sample(s, l, n_vocab, NULL, 0, &f->i32);
    free(l);
    gemfa_sampler_free(s);
    return st;
}
WITH_CONSTRAINT(constraint_accept_past, gemfa_constraint_accept(c, 1024))
WITH_CONSTRAINT(constraint_accept_negative, gemfa_constraint_accept(c, -2))
WITH_CONSTRAINT(constraint_accept_eog_early, gemfa_constraint_accept(c, 1))
WITH_CONSTRAINT(constraint_mask_small, gemfa_constraint_mask(c, (uint8_t *)f->buf, 64, &f->sz))
WITH_CONSTRAINT(constraint_mask_null_n, gemfa_constraint_mask(c, (uint8_t *)f->buf, 64, NULL))
WITH_CONSTRAINT(constraint_sample_wrong_vocab, sample_constrained(c, 16, f))

#define E(x) GEMFA_ERR_##x
#define NO_TOK "no tokenizer"

/* X(name, expected status, words of the message (NULL: any non-empty),
 *   the call — with `f` the fixture) */
#define CASES(X) \
    /* ---- model options ---- */ \
    X(model_options_new_null, E(INVALID_ARGUMENT), "NULL", gemfa_model_options_new(NULL)) \
    X(set_weights_null, E(INVALID_ARGUMENT), "NULL", gemfa_model_options_set_weights(NULL, GEMFA_WEIGHTS_F32)) \
    X(set_weights_enum, E(INVALID_ARGUMENT), "99", gemfa_model_options_set_weights(f->mo, (gemfa_weight_type)99)) \
    X(set_weights_negative, E(INVALID_ARGUMENT), "-1", gemfa_model_options_set_weights(f->mo, (gemfa_weight_type)-1)) \
    X(set_vocab_only_null, E(INVALID_ARGUMENT), "NULL", gemfa_model_options_set_vocab_only(NULL, 1)) \
    X(set_progress_null, E(INVALID_ARGUMENT), "NULL", gemfa_model_options_set_progress(NULL, NULL, NULL)) \
    X(set_threads_null, E(INVALID_ARGUMENT), "NULL", gemfa_model_options_set_threads(NULL, 1)) \
    X(set_threads_negative, E(INVALID_ARGUMENT), "-1", gemfa_model_options_set_threads(f->mo, -1)) \
    /* ---- load ---- */ \
    X(load_null_path, E(INVALID_ARGUMENT), "path", gemfa_model_load(NULL, NULL, &f->model_out)) \
    X(load_null_out, E(INVALID_ARGUMENT), "out", gemfa_model_load(rel_tiny_dir(), NULL, NULL)) \
    X(load_missing_dir, E(NOT_FOUND), "/nonexistent/gemfa", gemfa_model_load("/nonexistent/gemfa", NULL, &f->model_out)) \
    X(load_empty_dir, E(NOT_FOUND), "config.json", gemfa_model_load(f->empty_dir, NULL, &f->model_out)) \
    X(load_empty_path, E(NOT_FOUND), NULL, gemfa_model_load("", NULL, &f->model_out)) \
    X(load_file_as_dir, E(NOT_FOUND), NULL, gemfa_model_load("/etc/hostname", NULL, &f->model_out)) \
    X(load_long_path, E(IO), NULL, gemfa_model_load(long_path(), NULL, &f->model_out)) \
    X(load_fifo_config, E(IO), "config.json", gemfa_model_load(f->fifo_dir, NULL, &f->model_out)) \
    /* ---- model queries ---- */ \
    X(get_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_model_get(NULL, GEMFA_PROP_VOCAB_SIZE, &f->i64)) \
    X(get_null_value, E(INVALID_ARGUMENT), "NULL", gemfa_model_get(f->m, GEMFA_PROP_VOCAB_SIZE, NULL)) \
    X(get_prop_zero, E(INVALID_ARGUMENT), "0", gemfa_model_get(f->m, (gemfa_model_prop)0, &f->i64)) \
    X(get_prop_unknown, E(INVALID_ARGUMENT), "999", gemfa_model_get(f->m, (gemfa_model_prop)999, &f->i64)) \
    X(get_prop_negative, E(INVALID_ARGUMENT), "-5", gemfa_model_get(f->m, (gemfa_model_prop)-5, &f->i64)) \
    X(layer_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_model_layer(NULL, 0, &f->lt, &f->i, &f->i64, &f->f)) \
    X(layer_negative, E(INVALID_ARGUMENT), "-1", gemfa_model_layer(f->m, -1, &f->lt, &f->i, &f->i64, &f->f)) \
    X(layer_past_end, E(INVALID_ARGUMENT), "25", gemfa_model_layer(f->m, 25, &f->lt, &f->i, &f->i64, &f->f)) \
    X(layer_int_max, E(INVALID_ARGUMENT), "2147483647", gemfa_model_layer(f->m, INT32_MAX, &f->lt, &f->i, &f->i64, &f->f)) \
    X(layer_vocab_only, E(NO_WEIGHTS), NULL, gemfa_model_layer(f->vocab, 0, &f->lt, &f->i, &f->i64, &f->f)) \
    X(eog_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_model_eog_ids(NULL, f->ids, 8, &f->sz)) \
    X(eog_null_n, E(INVALID_ARGUMENT), "NULL", gemfa_model_eog_ids(f->m, f->ids, 8, NULL)) \
    X(eog_null_ids_cap, E(INVALID_ARGUMENT), "NULL", gemfa_model_eog_ids(f->m, NULL, 8, &f->sz)) \
    X(eog_too_small, E(BUFFER_TOO_SMALL), NULL, gemfa_model_eog_ids(f->m, NULL, 0, &f->sz)) \
    /* ---- tokenizer ---- */ \
    X(tokenize_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_tokenize(NULL, "a", 1, 0, f->ids, 8, &f->sz)) \
    X(tokenize_null_text, E(INVALID_ARGUMENT), "NULL", gemfa_tokenize(f->m, NULL, 3, 0, f->ids, 8, &f->sz)) \
    X(tokenize_null_text_nul, E(INVALID_ARGUMENT), "NULL", gemfa_tokenize(f->m, NULL, GEMFA_NUL_TERMINATED, 0, f->ids, 8, &f->sz)) \
    X(tokenize_null_n, E(INVALID_ARGUMENT), "NULL", gemfa_tokenize(f->m, "a", 1, 0, f->ids, 8, NULL)) \
    X(tokenize_null_ids_cap, E(INVALID_ARGUMENT), "NULL", gemfa_tokenize(f->m, "a", 1, 0, NULL, 8, &f->sz)) \
    X(tokenize_flags, E(INVALID_ARGUMENT), "flags", gemfa_tokenize(f->m, "a", 1, 0x80, f->ids, 8, &f->sz)) \
    X(tokenize_bad_utf8, E(INVALID_UTF8), "3", gemfa_tokenize(f->m, bad_utf8, sizeof bad_utf8 - 1, 0, f->ids, 8, &f->sz)) \
    X(tokenize_bad_utf8_nul, E(INVALID_UTF8), "3", gemfa_tokenize(f->m, bad_utf8, GEMFA_NUL_TERMINATED, 0, f->ids, 8, &f->sz)) \
    X(tokenize_lone_cont, E(INVALID_UTF8), "0", gemfa_tokenize(f->m, "\x80", 1, 0, f->ids, 8, &f->sz)) \
    X(tokenize_cut_seq, E(INVALID_UTF8), "1", gemfa_tokenize(f->m, "a\xD8", 2, 0, f->ids, 8, &f->sz)) \
    X(tokenize_overlong, E(INVALID_UTF8), "0", gemfa_tokenize(f->m, "\xC0\xAF", 2, 0, f->ids, 8, &f->sz)) \
    X(tokenize_above_max, E(INVALID_UTF8), "0", gemfa_tokenize(f->m, "\xF4\x90\x80\x80", 4, 0, f->ids, 8, &f->sz)) \
    X(tokenize_too_small, E(BUFFER_TOO_SMALL), NULL, gemfa_tokenize(f->m, "hello world, hello", GEMFA_NUL_TERMINATED, 0, f->ids, 1, &f->sz)) \
    X(tokenize_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_tokenize(f->notok, "a", 1, 0, f->ids, 8, &f->sz)) \
    X(detok_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_detokenize(NULL, good_ids, 2, 0, f->buf, 64, &f->sz)) \
    X(detok_null_ids, E(INVALID_ARGUMENT), "NULL", gemfa_detokenize(f->m, NULL, 2, 0, f->buf, 64, &f->sz)) \
    X(detok_null_len, E(INVALID_ARGUMENT), "NULL", gemfa_detokenize(f->m, good_ids, 2, 0, f->buf, 64, NULL)) \
    X(detok_null_buf_cap, E(INVALID_ARGUMENT), "NULL", gemfa_detokenize(f->m, good_ids, 2, 0, NULL, 64, &f->sz)) \
    X(detok_flags, E(INVALID_ARGUMENT), "flags", gemfa_detokenize(f->m, good_ids, 2, 0x40, f->buf, 64, &f->sz)) \
    X(detok_negative_id, E(INVALID_TOKEN), "1", gemfa_detokenize(f->m, neg_id, 2, 0, f->buf, 64, &f->sz)) \
    X(detok_huge_id, E(INVALID_TOKEN), "2147483647", gemfa_detokenize(f->m, (int32_t[]){INT32_MAX}, 1, 0, f->buf, 64, &f->sz)) \
    X(detok_past_vocab, E(INVALID_TOKEN), "1024", gemfa_detokenize(f->m, (int32_t[]){1024}, 1, 0, f->buf, 64, &f->sz)) \
    X(detok_too_small, E(BUFFER_TOO_SMALL), NULL, gemfa_detokenize(f->m, good_ids, 2, 0, f->buf, 1, &f->sz)) \
    X(detok_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_detokenize(f->notok, good_ids, 2, 0, f->buf, 64, &f->sz)) \
    X(piece_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_token_piece(NULL, 2, f->buf, 64, &f->sz)) \
    X(piece_negative, E(INVALID_TOKEN), "-7", gemfa_token_piece(f->m, -7, f->buf, 64, &f->sz)) \
    X(piece_past_vocab, E(INVALID_TOKEN), "5000", gemfa_token_piece(f->m, 5000, f->buf, 64, &f->sz)) \
    X(piece_null_len, E(INVALID_ARGUMENT), "NULL", gemfa_token_piece(f->m, 2, f->buf, 64, NULL)) \
    X(piece_too_small, E(BUFFER_TOO_SMALL), NULL, gemfa_token_piece(f->m, 2, f->buf, 2, &f->sz)) \
    X(piece_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_token_piece(f->notok, 2, f->buf, 64, &f->sz)) \
    X(token_id_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_token_id(NULL, "<bos>", 5, &f->i32)) \
    X(token_id_null_piece, E(INVALID_ARGUMENT), "NULL", gemfa_token_id(f->m, NULL, 5, &f->i32)) \
    X(token_id_null_out, E(INVALID_ARGUMENT), "NULL", gemfa_token_id(f->m, "<bos>", 5, NULL)) \
    X(token_id_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_token_id(f->notok, "<bos>", 5, &f->i32)) \
    /* ---- detokenizer stream ---- */ \
    X(stream_new_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_detok_stream_new(NULL, 0, &f->stream_out)) \
    X(stream_new_null_out, E(INVALID_ARGUMENT), "NULL", gemfa_detok_stream_new(f->m, 0, NULL)) \
    X(stream_new_flags, E(INVALID_ARGUMENT), "flags", gemfa_detok_stream_new(f->m, 0x10, &f->stream_out)) \
    X(stream_new_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_detok_stream_new(f->notok, 0, &f->stream_out)) \
    X(stream_feed_null, E(INVALID_ARGUMENT), "NULL", gemfa_detok_stream_feed(NULL, 2, (const char **)&f->p, &f->sz)) \
    X(stream_feed_null_text, E(INVALID_ARGUMENT), "NULL", gemfa_detok_stream_feed(f->ds, 2, NULL, &f->sz)) \
    X(stream_feed_null_len, E(INVALID_ARGUMENT), "NULL", gemfa_detok_stream_feed(f->ds, 2, (const char **)&f->p, NULL)) \
    X(stream_feed_negative, E(INVALID_TOKEN), "-1", gemfa_detok_stream_feed(f->ds, -1, (const char **)&f->p, &f->sz)) \
    X(stream_feed_huge, E(INVALID_TOKEN), "2147483647", gemfa_detok_stream_feed(f->ds, INT32_MAX, (const char **)&f->p, &f->sz)) \
    X(stream_flush_null, E(INVALID_ARGUMENT), "NULL", gemfa_detok_stream_flush(NULL, (const char **)&f->p, &f->sz)) \
    X(stream_flush_null_text, E(INVALID_ARGUMENT), "NULL", gemfa_detok_stream_flush(f->ds, NULL, &f->sz)) \
    /* ---- chat template ---- */ \
    X(chat_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_apply_chat_template(NULL, &user_msg, 1, 1, f->buf, 64, &f->sz)) \
    X(chat_null_messages, E(INVALID_ARGUMENT), "NULL", gemfa_apply_chat_template(f->m, NULL, 1, 1, f->buf, 64, &f->sz)) \
    X(chat_null_len, E(INVALID_ARGUMENT), "NULL", gemfa_apply_chat_template(f->m, &user_msg, 1, 1, f->buf, 64, NULL)) \
    X(chat_null_buf_cap, E(INVALID_ARGUMENT), "NULL", gemfa_apply_chat_template(f->m, &user_msg, 1, 1, NULL, 64, &f->sz)) \
    X(chat_huge_count, E(INVALID_ARGUMENT), NULL, gemfa_apply_chat_template(f->m, &user_msg, SIZE_MAX, 1, f->buf, 64, &f->sz)) \
    X(chat_no_messages, E(TEMPLATE), NULL, gemfa_apply_chat_template(f->m, &user_msg, 0, 1, f->buf, 64, &f->sz)) \
    X(chat_null_role, E(INVALID_ARGUMENT), "role", gemfa_apply_chat_template(f->m, &null_role_msg, 1, 1, f->buf, 64, &f->sz)) \
    X(chat_null_content, E(INVALID_ARGUMENT), "content", gemfa_apply_chat_template(f->m, &null_content_msg, 1, 1, f->buf, 64, &f->sz)) \
    X(chat_bad_role_utf8, E(INVALID_UTF8), "role", gemfa_apply_chat_template(f->m, &bad_role_msg, 1, 1, f->buf, 64, &f->sz)) \
    X(chat_bad_content_utf8, E(INVALID_UTF8), "content", gemfa_apply_chat_template(f->m, &bad_content_msg, 1, 1, f->buf, 64, &f->sz)) \
    X(chat_roles_repeat, E(TEMPLATE), "Conversation roles must alternate user/assistant/user/assistant/...", gemfa_apply_chat_template(f->m, out_of_order, 2, 1, f->buf, 64, &f->sz)) \
    X(chat_assistant_first, E(TEMPLATE), "Conversation roles must alternate", gemfa_apply_chat_template(f->m, assistant_first, 1, 1, f->buf, 64, &f->sz)) \
    X(chat_system_then_model, E(TEMPLATE), "Conversation roles must alternate", gemfa_apply_chat_template(f->m, system_then_model, 2, 1, f->buf, 64, &f->sz)) \
    X(chat_too_small, E(BUFFER_TOO_SMALL), NULL, gemfa_apply_chat_template(f->m, &user_msg, 1, 1, f->buf, 4, &f->sz)) \
    X(chat_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_apply_chat_template(f->notok, &user_msg, 1, 1, f->buf, 64, &f->sz)) \
    X(chat_tok_flags, E(INVALID_ARGUMENT), "flags", gemfa_chat_tokenize(f->m, &user_msg, 1, 1, 0x8, f->ids, 8, &f->sz)) \
    X(chat_tok_null_n, E(INVALID_ARGUMENT), "NULL", gemfa_chat_tokenize(f->m, &user_msg, 1, 1, 0, f->ids, 8, NULL)) \
    X(chat_tok_null_ids_cap, E(INVALID_ARGUMENT), "NULL", gemfa_chat_tokenize(f->m, &user_msg, 1, 1, 0, NULL, 8, &f->sz)) \
    X(chat_tok_order, E(TEMPLATE), "Conversation roles must alternate", gemfa_chat_tokenize(f->m, out_of_order, 2, 1, 0, f->ids, 8, &f->sz)) \
    X(chat_tok_bad_utf8, E(INVALID_UTF8), "content", gemfa_chat_tokenize(f->m, &bad_content_msg, 1, 1, GEMFA_CHAT_INJECTION_SAFE, f->ids, 8, &f->sz)) \
    X(chat_tok_too_small, E(BUFFER_TOO_SMALL), NULL, gemfa_chat_tokenize(f->m, &user_msg, 1, 1, 0, f->ids, 2, &f->sz)) \
    X(chat_tok_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_chat_tokenize(f->notok, &user_msg, 1, 1, 0, f->ids, 8, &f->sz)) \
    /* ---- context ---- */ \
    X(ctx_options_new_null, E(INVALID_ARGUMENT), "NULL", gemfa_context_options_new(NULL)) \
    X(ctx_threads_null, E(INVALID_ARGUMENT), "NULL", gemfa_context_options_set_threads(NULL, 1)) \
    X(ctx_threads_negative, E(INVALID_ARGUMENT), "-3", gemfa_context_options_set_threads(f->co, -3)) \
    X(ctx_threads_huge, E(INVALID_ARGUMENT), "1025", gemfa_context_options_set_threads(f->co, 1025)) \
    X(ctx_cancel_null, E(INVALID_ARGUMENT), "NULL", gemfa_context_options_set_cancel(NULL, NULL, NULL)) \
    X(ctx_new_null_model, E(INVALID_ARGUMENT), "model", gemfa_context_new(NULL, NULL, &f->ctx_out)) \
    X(ctx_new_null_out, E(INVALID_ARGUMENT), "out", gemfa_context_new(f->m, NULL, NULL)) \
    X(ctx_new_vocab_only, E(NO_WEIGHTS), NULL, gemfa_context_new(f->vocab, NULL, &f->ctx_out)) \
    /* ---- session ---- */ \
    X(sess_options_new_null, E(INVALID_ARGUMENT), "NULL", gemfa_session_options_new(NULL)) \
    X(sess_max_null, E(INVALID_ARGUMENT), "NULL", gemfa_session_options_set_max_context(NULL, 1)) \
    X(sess_max_negative, E(INVALID_ARGUMENT), "-1", gemfa_session_options_set_max_context(f->so, -1)) \
    X(sess_max_int64_min, E(INVALID_ARGUMENT), NULL, gemfa_session_options_set_max_context(f->so, INT64_MIN)) \
    X(sess_new_null_ctx, E(INVALID_ARGUMENT), "NULL", gemfa_session_new(NULL, NULL, &f->session_out)) \
    X(sess_new_null_out, E(INVALID_ARGUMENT), "NULL", gemfa_session_new(f->ctx, NULL, NULL)) \
    X(sess_new_too_long, E(INVALID_ARGUMENT), "4096", session_new_with_max(f, 4097)) \
    X(sess_new_huge, E(INVALID_ARGUMENT), NULL, session_new_with_max(f, INT64_MAX)) \
    X(decode_null_session, E(INVALID_ARGUMENT), "NULL", gemfa_decode(NULL, good_ids, 2, (const float **)&f->p)) \
    X(decode_null_ids, E(INVALID_ARGUMENT), "NULL", gemfa_decode(f->s, NULL, 2, (const float **)&f->p)) \
    X(decode_zero, E(INVALID_ARGUMENT), "0", gemfa_decode(f->s, good_ids, 0, (const float **)&f->p)) \
    X(decode_negative_id, E(INVALID_TOKEN), "-1", gemfa_decode(f->s, neg_id, 2, (const float **)&f->p)) \
    X(decode_past_vocab, E(INVALID_TOKEN), "1024", gemfa_decode(f->s, (int32_t[]){1024}, 1, (const float **)&f->p)) \
    X(decode_int_max, E(INVALID_TOKEN), "2147483647", gemfa_decode(f->s, (int32_t[]){INT32_MAX}, 1, (const float **)&f->p)) \
    X(decode_full, E(CONTEXT_FULL), "4", gemfa_decode(f->s_full, good_ids, 1, (const float **)&f->p)) \
    X(decode_huge_n, E(CONTEXT_FULL), NULL, gemfa_decode(f->s, good_ids, SIZE_MAX, (const float **)&f->p)) \
    X(decode_all_null_buf, E(INVALID_ARGUMENT), "NULL", gemfa_decode_all(f->s, good_ids, 2, NULL, 4096)) \
    X(decode_all_small, E(BUFFER_TOO_SMALL), NULL, gemfa_decode_all(f->s, good_ids, 2, f->logits, 16)) \
    X(decode_all_overflow, E(CONTEXT_FULL), NULL, gemfa_decode_all(f->s, good_ids, SIZE_MAX / 512, f->logits, 16)) \
    X(batch_null_ctx, E(INVALID_ARGUMENT), "NULL", gemfa_decode_batch(NULL, &f->s, good_ids, 1)) \
    X(batch_null_sessions, E(INVALID_ARGUMENT), "NULL", gemfa_decode_batch(f->ctx, NULL, good_ids, 1)) \
    X(batch_null_ids, E(INVALID_ARGUMENT), "NULL", gemfa_decode_batch(f->ctx, &f->s, NULL, 1)) \
    X(batch_zero, E(INVALID_ARGUMENT), "0", gemfa_decode_batch(f->ctx, &f->s, good_ids, 0)) \
    X(batch_null_entry, E(INVALID_ARGUMENT), "NULL", batch_of(f, f->s, NULL)) \
    X(batch_duplicate, E(INVALID_ARGUMENT), NULL, batch_of(f, f->s, f->s)) \
    X(batch_other_ctx, E(INVALID_ARGUMENT), "context", batch_of(f, f->s, f->s2)) \
    X(batch_full, E(CONTEXT_FULL), NULL, batch_of(f, f->s, f->s_full)) \
    X(batch_bad_id, E(INVALID_TOKEN), "-1", gemfa_decode_batch(f->ctx, &f->s, neg_id + 1, 1)) \
    X(logits_null, E(INVALID_ARGUMENT), "NULL", gemfa_session_logits(NULL, (const float **)&f->p, &f->sz)) \
    X(logits_null_out, E(INVALID_ARGUMENT), "NULL", gemfa_session_logits(f->s, NULL, &f->sz)) \
    X(tokens_null, E(INVALID_ARGUMENT), "NULL", gemfa_session_tokens(NULL, (const int32_t **)&f->p, &f->sz)) \
    X(tokens_null_out, E(INVALID_ARGUMENT), "NULL", gemfa_session_tokens(f->s, NULL, &f->sz)) \
    X(fork_null, E(INVALID_ARGUMENT), "NULL", gemfa_session_fork(NULL, &f->session_out)) \
    X(fork_null_out, E(INVALID_ARGUMENT), "NULL", gemfa_session_fork(f->s, NULL)) \
    /* ---- sampler ---- */ \
    X(sampler_new_null_out, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_new(f->m, NULL)) \
    X(temp_null, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_set_temperature(NULL, 1)) \
    X(temp_negative, E(INVALID_ARGUMENT), "temperature", gemfa_sampler_set_temperature(f->smp, -0.5f)) \
    X(temp_nan, E(INVALID_ARGUMENT), "temperature", gemfa_sampler_set_temperature(f->smp, NAN)) \
    X(temp_inf, E(INVALID_ARGUMENT), "temperature", gemfa_sampler_set_temperature(f->smp, INFINITY)) \
    X(top_k_negative, E(INVALID_ARGUMENT), "-1", gemfa_sampler_set_top_k(f->smp, -1)) \
    X(top_k_null, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_set_top_k(NULL, 1)) \
    X(top_p_zero, E(INVALID_ARGUMENT), "top_p", gemfa_sampler_set_top_p(f->smp, 0)) \
    X(top_p_above, E(INVALID_ARGUMENT), "top_p", gemfa_sampler_set_top_p(f->smp, 1.5f)) \
    X(top_p_nan, E(INVALID_ARGUMENT), "top_p", gemfa_sampler_set_top_p(f->smp, NAN)) \
    X(min_p_negative, E(INVALID_ARGUMENT), "min_p", gemfa_sampler_set_min_p(f->smp, -0.1f)) \
    X(min_p_above, E(INVALID_ARGUMENT), "min_p", gemfa_sampler_set_min_p(f->smp, 1.01f)) \
    X(min_p_null, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_set_min_p(NULL, 0.1f)) \
    X(rep_zero, E(INVALID_ARGUMENT), "repetition", gemfa_sampler_set_penalties(f->smp, 0, 0, 0, 0)) \
    X(rep_inf, E(INVALID_ARGUMENT), "repetition", gemfa_sampler_set_penalties(f->smp, INFINITY, 0, 0, 0)) \
    X(freq_nan, E(INVALID_ARGUMENT), "frequency", gemfa_sampler_set_penalties(f->smp, 1, NAN, 0, 0)) \
    X(presence_inf, E(INVALID_ARGUMENT), "presence", gemfa_sampler_set_penalties(f->smp, 1, 0, -INFINITY, 0)) \
    X(last_n_negative, E(INVALID_ARGUMENT), "last_n", gemfa_sampler_set_penalties(f->smp, 1, 0, 0, -1)) \
    X(penalties_null, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_set_penalties(NULL, 1, 0, 0, 0)) \
    X(bias_negative_id, E(INVALID_ARGUMENT), "-1", gemfa_sampler_set_logit_bias(f->smp, -1, 1)) \
    X(bias_nan, E(INVALID_ARGUMENT), "bias", gemfa_sampler_set_logit_bias(f->smp, 1, NAN)) \
    X(bias_plus_inf, E(INVALID_ARGUMENT), "bias", gemfa_sampler_set_logit_bias(f->smp, 1, INFINITY)) \
    X(bias_null, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_set_logit_bias(NULL, 1, 1)) \
    X(clear_bias_null, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_clear_logit_bias(NULL)) \
    X(seed_null, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_set_seed(NULL, 1)) \
    X(sample_null_sampler, E(INVALID_ARGUMENT), "NULL", gemfa_sample(NULL, four_logits, 4, NULL, 0, &f->i32)) \
    X(sample_null_logits, E(INVALID_ARGUMENT), "NULL", gemfa_sample(f->smp, NULL, 4, NULL, 0, &f->i32)) \
    X(sample_null_id, E(INVALID_ARGUMENT), "NULL", gemfa_sample(f->smp, four_logits, 4, NULL, 0, NULL)) \
    X(sample_zero_vocab, E(INVALID_ARGUMENT), "n_vocab", gemfa_sample(f->smp, four_logits, 0, NULL, 0, &f->i32)) \
    X(sample_huge_vocab, E(INVALID_ARGUMENT), "n_vocab", gemfa_sample(f->smp, four_logits, (size_t)INT32_MAX + 1, NULL, 0, &f->i32)) \
    X(sample_null_history, E(INVALID_ARGUMENT), "history", gemfa_sample(f->smp, four_logits, 4, NULL, 3, &f->i32)) \
    X(sample_all_nan, E(INVALID_ARGUMENT), NULL, gemfa_sample(f->smp, nan_logits, 4, NULL, 0, &f->i32)) \
    X(sample_bias_past_vocab, E(INVALID_TOKEN), "9", sample_with_bias(f, 9)) \
    X(sample_history_past_vocab, E(INVALID_TOKEN), "99", sample_with_penalty(f, bad_history, 2)) \
    /* ---- stop strings, log-probabilities, token bytes ---- */ \
    X(stop_new_null_out, E(INVALID_ARGUMENT), "out", gemfa_stop_matcher_new(one_stop, NULL, 1, NULL)) \
    X(stop_new_null_stops, E(INVALID_ARGUMENT), "stops", gemfa_stop_matcher_new(NULL, NULL, 2, STOP_OUT(f))) \
    X(stop_new_null_string, E(INVALID_ARGUMENT), "1 is NULL", gemfa_stop_matcher_new(null_stop, NULL, 2, STOP_OUT(f))) \
    X(stop_new_empty, E(INVALID_ARGUMENT), "1 is empty", gemfa_stop_matcher_new(empty_stop, NULL, 2, STOP_OUT(f))) \
    X(stop_new_bad_utf8, E(INVALID_UTF8), "byte 3", gemfa_stop_matcher_new(bad_stop, NULL, 1, STOP_OUT(f))) \
    X(stop_feed_null, E(INVALID_ARGUMENT), "NULL", gemfa_stop_matcher_feed(NULL, "a", 1, (const char **)&f->p, &f->sz, &f->i)) \
    X(stop_flush_null, E(INVALID_ARGUMENT), "NULL", gemfa_stop_matcher_flush(NULL, (const char **)&f->p, &f->sz)) \
    X(logprobs_null_logits, E(INVALID_ARGUMENT), "NULL", gemfa_logprobs(NULL, 4, 0, &f->f, 0, NULL, NULL, NULL)) \
    X(logprobs_zero_vocab, E(INVALID_ARGUMENT), "n_vocab", gemfa_logprobs(four_logits, 0, 0, &f->f, 0, NULL, NULL, NULL)) \
    X(logprobs_huge_vocab, E(INVALID_ARGUMENT), "n_vocab", gemfa_logprobs(four_logits, (size_t)INT32_MAX + 1, 0, &f->f, 0, NULL, NULL, NULL)) \
    X(logprobs_chosen_past_vocab, E(INVALID_TOKEN), "4", gemfa_logprobs(four_logits, 4, 4, &f->f, 0, NULL, NULL, NULL)) \
    X(logprobs_chosen_negative, E(INVALID_TOKEN), "-3", gemfa_logprobs(four_logits, 4, -3, &f->f, 0, NULL, NULL, NULL)) \
    X(logprobs_null_n_top, E(INVALID_ARGUMENT), "n_top", gemfa_logprobs(four_logits, 4, 0, &f->f, 2, f->ids, f->logits, NULL)) \
    X(logprobs_all_nan, E(INVALID_ARGUMENT), "NaN", gemfa_logprobs(nan_logits, 4, 0, &f->f, 2, f->ids, f->logits, &f->sz)) \
    X(token_bytes_null_model, E(INVALID_ARGUMENT), "NULL", gemfa_token_bytes(NULL, 2, f->buf, 64, &f->sz)) \
    X(token_bytes_negative, E(INVALID_TOKEN), "-7", gemfa_token_bytes(f->m, -7, f->buf, 64, &f->sz)) \
    X(token_bytes_past_vocab, E(INVALID_TOKEN), "5000", gemfa_token_bytes(f->m, 5000, f->buf, 64, &f->sz)) \
    X(token_bytes_null_len, E(INVALID_ARGUMENT), "NULL", gemfa_token_bytes(f->m, 2, f->buf, 64, NULL)) \
    X(token_bytes_too_small, E(BUFFER_TOO_SMALL), NULL, gemfa_token_bytes(f->m, 2, f->buf, 2, &f->sz)) \
    X(token_bytes_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_token_bytes(f->notok, 2, f->buf, 64, &f->sz)) \
    /* ---- JSON constraint ---- */ \
    X(constraint_new_null_model, E(INVALID_ARGUMENT), "model", gemfa_constraint_new_json(NULL, NULL, 0, CON_OUT(f))) \
    X(constraint_new_null_out, E(INVALID_ARGUMENT), "out", gemfa_constraint_new_json(f->m, NULL, 0, NULL)) \
    X(constraint_new_null_schema, E(INVALID_ARGUMENT), "len", gemfa_constraint_new_json(f->m, NULL, 3, CON_OUT(f))) \
    X(constraint_new_malformed, E(FORMAT), "schema", gemfa_constraint_new_json(f->m, "{\"type\"", GEMFA_NUL_TERMINATED, CON_OUT(f))) \
    X(constraint_new_unsupported, E(UNSUPPORTED), "pattern", gemfa_constraint_new_json(f->m, "{\"pattern\":\"a\"}", GEMFA_NUL_TERMINATED, CON_OUT(f))) \
    X(constraint_new_bad_value, E(INVALID_ARGUMENT), "maxItems", gemfa_constraint_new_json(f->m, "{\"maxItems\":-1}", GEMFA_NUL_TERMINATED, CON_OUT(f))) \
    X(constraint_new_bad_utf8, E(FORMAT), NULL, gemfa_constraint_new_json(f->m, "{\"enum\":[\"\xff\"]}", GEMFA_NUL_TERMINATED, CON_OUT(f))) \
    X(constraint_new_no_tokenizer, E(NO_TOKENIZER), NULL, gemfa_constraint_new_json(f->notok, NULL, 0, CON_OUT(f))) \
    X(constraint_reset_null, E(INVALID_ARGUMENT), "NULL", gemfa_constraint_reset(NULL)) \
    X(constraint_accept_null, E(INVALID_ARGUMENT), "NULL", gemfa_constraint_accept(NULL, 0)) \
    X(constraint_accept_past_vocab, E(INVALID_TOKEN), "1024", constraint_accept_past(f)) \
    X(constraint_accept_negative_id, E(INVALID_TOKEN), "-2", constraint_accept_negative(f)) \
    X(constraint_accept_eog_early, E(INVALID_TOKEN), "complete", constraint_accept_eog_early(f)) \
    X(constraint_mask_null, E(INVALID_ARGUMENT), "NULL", gemfa_constraint_mask(NULL, NULL, 0, &f->sz)) \
    X(constraint_mask_null_n, E(INVALID_ARGUMENT), "NULL", constraint_mask_null_n(f)) \
    X(constraint_mask_too_small, E(BUFFER_TOO_SMALL), "1024", constraint_mask_small(f)) \
    X(constraint_sample_wrong_vocab, E(INVALID_ARGUMENT), "vocabulary", constraint_sample_wrong_vocab(f)) \
    X(sampler_set_constraint_null, E(INVALID_ARGUMENT), "NULL", gemfa_sampler_set_constraint(NULL, NULL))

static char *long_path(void)
{
    static char p[70000];
    memset(p, 'a', sizeof p - 1);
    for (size_t i = 0; i < sizeof p - 1; i += 200)
        p[i] = '/';
    return p;
}

static gemfa_status session_new_with_max(fx *f, int64_t max)
{
    gemfa_session_options *o;
    cr_assert_eq(gemfa_session_options_new(&o), GEMFA_OK);
    gemfa_status st = gemfa_session_options_set_max_context(o, max);
    if (st == GEMFA_OK)
        st = gemfa_session_new(f->ctx, o, &f->session_out);
    gemfa_session_options_free(o);
    return st;
}

static gemfa_status batch_of(fx *f, gemfa_session *a, gemfa_session *b)
{
    gemfa_session *both[2] = {a, b};
    return gemfa_decode_batch(f->ctx, both, good_ids, 2);
}

static gemfa_status sample_with_bias(fx *f, int32_t id)
{
    gemfa_sampler *s;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_logit_bias(s, id, 1), GEMFA_OK);
    gemfa_status st = gemfa_sample(s, four_logits, 4, NULL, 0, &f->i32);
    gemfa_sampler_free(s);
    return st;
}

static gemfa_status sample_with_penalty(fx *f, const int32_t *history, size_t n)
{
    gemfa_sampler *s;
    cr_assert_eq(gemfa_sampler_new(NULL, &s), GEMFA_OK);
    cr_assert_eq(gemfa_sampler_set_penalties(s, 1.2f, 0, 0, 0), GEMFA_OK);
    gemfa_status st = gemfa_sample(s, four_logits, 4, history, n, &f->i32);
    gemfa_sampler_free(s);
    return st;
}

typedef struct hostile_case {
    const char *name;
    gemfa_status want;
    const char *words;
    gemfa_status (*call)(fx *f);
} hostile_case;

#define DEFINE(name, want, words, expr) \
    static gemfa_status case_##name(fx *f) { (void)f; return expr; }
CASES(DEFINE)
#define ENTRY(name, want, words, expr) {#name, want, words, case_##name},
static const hostile_case cases[] = {CASES(ENTRY)};

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 120);

Test(hostile, every_case_returns_its_documented_status)
{
    size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n_cases; i++) {
        const hostile_case *c = &cases[i];
        reset_outs(&F);
        size_t s_before = gemfa_session_n_tokens(F.s), full_before = gemfa_session_n_tokens(F.s_full);
        gemfa_status st = c->call(&F);
        const char *msg = gemfa_last_error();
        cr_expect_eq(st, c->want, "%s: %s, documented %s (message: %s)", c->name,
                     gemfa_status_name(st), gemfa_status_name(c->want), msg);
        if (st == GEMFA_OK)
            continue;
        cr_expect(msg[0] != '\0', "%s: no message", c->name);
        if (c->words)
            cr_expect(strstr(msg, c->words) != NULL, "%s: message '%s' lacks '%s'", c->name, msg,
                      c->words);
        const char *w = written(&F, st);
        cr_expect(w == NULL, "%s: a failed call wrote %s", c->name, w ? w : "");
        if (st == GEMFA_ERR_BUFFER_TOO_SMALL && strncmp(c->name, "decode_all", 10) != 0)
            cr_expect(F.sz != S_SIZE, "%s: BUFFER_TOO_SMALL without the needed size", c->name);
        cr_expect_eq(gemfa_session_n_tokens(F.s), s_before, "%s: session moved", c->name);
        cr_expect_eq(gemfa_session_n_tokens(F.s_full), full_before, "%s: full session moved",
                     c->name);
    }
    cr_expect_gt(n_cases, 150u, "the table lost cases");
}

/* Calls that cannot fail: NULL handles are no-ops or give 0 / fixed text. */
Test(hostile, infallible_calls_take_null_and_junk)
{
    gemfa_model_options_free(NULL);
    gemfa_model_free(NULL);
    gemfa_detok_stream_free(NULL);
    gemfa_detok_stream_reset(NULL);
    gemfa_context_options_free(NULL);
    gemfa_context_free(NULL);
    gemfa_session_options_free(NULL);
    gemfa_session_free(NULL);
    gemfa_session_reset(NULL);
    gemfa_sampler_free(NULL);
    gemfa_stop_matcher_free(NULL);
    gemfa_stop_matcher_reset(NULL);
    cr_expect_eq(gemfa_stop_matcher_held(NULL), 0u);
    cr_expect_eq(gemfa_session_n_tokens(NULL), 0u);
    cr_expect_eq(gemfa_session_max_context(NULL), 0u);
    cr_expect_eq(gemfa_session_memory_bytes(NULL), 0u);
    cr_expect_eq(gemfa_model_is_eog(NULL, 1), 0);
    cr_expect_eq(gemfa_model_is_eog(F.m, -1), 0);
    cr_expect_eq(gemfa_model_is_eog(F.m, INT32_MAX), 0);
    cr_expect_str_eq(gemfa_status_name((gemfa_status)-1), "GEMFA_ERR_UNKNOWN");
    cr_expect_str_eq(gemfa_status_name((gemfa_status)1000), "GEMFA_ERR_UNKNOWN");
    cr_expect_str_eq(gemfa_status_name((gemfa_status)INT32_MAX), "GEMFA_ERR_UNKNOWN");
    for (int s = 0; s <= GEMFA_ERR_NOT_FOUND; s++)
        cr_expect(strncmp(gemfa_status_name((gemfa_status)s), "GEMFA_", 6) == 0 &&
                      strcmp(gemfa_status_name((gemfa_status)s), "GEMFA_ERR_UNKNOWN") != 0,
                  "status %d has no name", s);
    cr_expect_not_null(gemfa_version_string());
    cr_expect_eq(gemfa_version_number(), GEMFA_VERSION_NUMBER);
    cr_expect_not_null(gemfa_last_error());
    gemfa_set_log_callback(NULL, NULL, (gemfa_log_level)99);
    gemfa_set_log_callback(NULL, NULL, GEMFA_LOG_WARN);
    /* a stream stays usable after rejected ids */
    const char *t;
    size_t len;
    cr_expect_eq(gemfa_detok_stream_feed(F.ds, -5, &t, &len), GEMFA_ERR_INVALID_TOKEN);
    cr_expect_eq(gemfa_detok_stream_feed(F.ds, 10, &t, &len), GEMFA_OK);
    cr_expect_eq(gemfa_detok_stream_flush(F.ds, &t, &len), GEMFA_OK);
}

/* Edge values that are valid: empty texts, NULL with length 0, a system
 * message alone, NULL content with length 0, exactly filling a context. */
Test(hostile, valid_edges)
{
    size_t n = S_SIZE;
    int32_t ids[8];
    cr_expect_eq(gemfa_tokenize(F.m, NULL, 0, 0, ids, 8, &n), GEMFA_OK);
    cr_expect_eq(n, 0u);
    cr_expect_eq(gemfa_tokenize(F.m, NULL, 0, GEMFA_TOKENIZE_ADD_BOS, ids, 8, &n), GEMFA_OK);
    cr_expect_eq(n, 1u);
    cr_expect_eq(gemfa_tokenize(F.m, "a\0b", 3, 0, NULL, 0, &n), GEMFA_ERR_BUFFER_TOO_SMALL);
    char buf[128];
    size_t len;
    cr_expect_eq(gemfa_detokenize(F.m, NULL, 0, 0, buf, sizeof buf, &len), GEMFA_OK);
    cr_expect_eq(len, 0u);
    cr_expect_eq(buf[0], '\0');
    int32_t id = S_I32;
    cr_expect_eq(gemfa_token_id(F.m, NULL, 0, &id), GEMFA_OK);
    cr_expect_eq(id, -1);
    cr_expect_eq(gemfa_token_id(F.m, "\xFF", 1, &id), GEMFA_OK, "%s", gemfa_last_error());
    cr_expect_eq(id, -1);
    gemfa_message sys = {"system", "s", 1}, empty = {"user", NULL, 0};
    cr_expect_eq(gemfa_apply_chat_template(F.m, &sys, 1, 1, buf, sizeof buf, &len), GEMFA_OK);
    cr_expect_str_eq(buf, "<bos><start_of_turn>model\n");
    /* a later "system" message is an ordinary turn, as in the Jinja template */
    cr_expect_eq(gemfa_apply_chat_template(F.m, system_second, 2, 0, buf, sizeof buf, &len),
                 GEMFA_OK);
    cr_expect_str_eq(buf, "<bos><start_of_turn>user\na<end_of_turn>\n"
                          "<start_of_turn>system\nb<end_of_turn>\n");
    cr_expect_eq(gemfa_apply_chat_template(F.m, &empty, 1, 0, buf, sizeof buf, &len), GEMFA_OK);
    cr_expect_str_eq(buf, "<bos><start_of_turn>user\n<end_of_turn>\n");
    /* the full session still answers queries; a reset makes room again */
    const float *lg;
    size_t nv;
    cr_expect_eq(gemfa_session_logits(F.s_full, &lg, &nv), GEMFA_OK);
    cr_expect_not_null(lg);
    gemfa_session *s;
    cr_assert_eq(gemfa_session_fork(F.s_full, &s), GEMFA_OK);
    cr_expect_eq(gemfa_decode(s, ids, 1, NULL), GEMFA_ERR_CONTEXT_FULL);
    gemfa_session_reset(s);
    int32_t one = 2;
    cr_expect_eq(gemfa_decode(s, &one, 1, NULL), GEMFA_OK);
    gemfa_session_free(s);
    /* an empty session has no logits yet */
    cr_expect_eq(gemfa_session_logits(F.s, &lg, &nv), GEMFA_OK);
    cr_expect_null(lg);
}
