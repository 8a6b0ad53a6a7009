/* test_state.c — gemfa_session_save / _load (buffer and file): a restored
 * session continues bit for bit like the original (same or another
 * context, larger max context, rings that wrapped), the size-query
 * protocol, and hostile inputs: every truncation, bit flips, edited fields
 * with a recomputed checksum, a future version, states of another model,
 * of the same checkpoint with another weight type, or with other weights;
 * allocation failures.  On every failure *out stays untouched. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "loader/model.h"
#include "rt_helpers.h"
#include "runtime/context.h"
#include "runtime/fingerprint.h"

static const int32_t ALT[] = {2, 105, 17, 300, 9, 44, 1000, 3};
#define N_ALT (sizeof ALT / sizeof ALT[0])
#define SENTINEL ((gemfa_session *)0x5e55)

static size_t vocab(const gemfa_model *m)
{
    int64_t v;
    gemfa_model_get(m, GEMFA_PROP_VOCAB_SIZE, &v);
    return (size_t)v;
}

static void *save(const gemfa_session *s, size_t *len)
{
    size_t need = 0;
    cr_assert_eq(gemfa_session_save(s, NULL, 0, &need), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_assert_geq(need, 96u);
    unsigned char *buf = malloc(need);
    size_t got = 0;
    cr_assert_eq(gemfa_session_save(s, buf, need - 1, &got), GEMFA_ERR_BUFFER_TOO_SMALL);
    cr_assert_eq(got, need);
    cr_assert_eq(gemfa_session_save(s, buf, need, &got), GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(got, need);
    *len = need;
    return buf;
}

/* Both sessions hold the same tokens and logits, and continue with the
 * same logits bit for bit (one call, then token by token). */
static void expect_same_future(gemfa_session *a, gemfa_session *b, size_t V, const char *what)
{
    const int32_t *ta, *tb;
    size_t na, nb;
    cr_assert_eq(gemfa_session_tokens(a, &ta, &na), GEMFA_OK);
    cr_assert_eq(gemfa_session_tokens(b, &tb, &nb), GEMFA_OK);
    cr_assert(na == nb && (na == 0 || memcmp(ta, tb, na * sizeof *ta) == 0), "%s: tokens", what);
    const float *la, *lb;
    size_t va, vb;
    gemfa_session_logits(a, &la, &va);
    gemfa_session_logits(b, &lb, &vb);
    cr_assert((la == NULL) == (lb == NULL), "%s: logits presence", what);
    if (la)
        cr_expect(memcmp(la, lb, V * sizeof(float)) == 0, "%s: last logits", what);
    float *fa = rt_decode_all(a, ALT, 3, V), *fb = rt_decode_all(b, ALT, 3, V);
    cr_expect(memcmp(fa, fb, 3 * V * sizeof(float)) == 0, "%s: continuation differs by %.3g",
              what, rt_max_abs_diff(fa, fb, 3 * V));
    for (size_t i = 3; i < N_ALT; i++) {
        const float *x, *y;
        cr_assert_eq(gemfa_decode(a, ALT + i, 1, &x), GEMFA_OK);
        cr_assert_eq(gemfa_decode(b, ALT + i, 1, &y), GEMFA_OK);
        cr_expect(memcmp(x, y, V * sizeof(float)) == 0, "%s: step %zu", what, i);
    }
    free(fa);
    free(fb);
}

static void roundtrip(const char *model, gemfa_weight_type w, int64_t chunk, size_t max_ctx)
{
    gemfa_model *m = rt_load(model, w);
    gemfa_context *ctx = rt_context(m), *other = rt_context(m);
    if (chunk) {
        cr_assert_eq(gf_context_set_chunk(ctx, chunk), GEMFA_OK);
        cr_assert_eq(gf_context_set_chunk(other, chunk), GEMFA_OK);
    }
    const size_t V = vocab(m);
    size_t N;
    int32_t *ids = rt_golden_i32("runtime/tiny10-s1", "long.tokens.i32.bin", &N); /* 300 ids < 1024 */
    const size_t lens[] = {0, 1, 7, 8, 9, 40, 263, 300 - N_ALT};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        const size_t n = lens[k];
        if (max_ctx && n + N_ALT > max_ctx)
            continue;
        gemfa_session *s = rt_session(ctx, (int64_t)max_ctx);
        if (n)
            cr_assert_eq(gemfa_decode(s, ids, n, NULL), GEMFA_OK);
        size_t len;
        void *buf = save(s, &len);
        gemfa_session *l = SENTINEL, *f = NULL;
        cr_assert_eq(gemfa_session_load(other, NULL, buf, len, &l), GEMFA_OK, "%s",
                     gemfa_last_error());
        cr_expect_eq(gemfa_session_max_context(l), gemfa_session_max_context(s));
        char path[] = "/tmp/gemfa_state_XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        cr_assert_eq(gemfa_session_save_file(s, path), GEMFA_OK, "%s", gemfa_last_error());
        size_t flen;
        void *fbuf = rt_read(path, &flen);
        cr_expect(flen == len && memcmp(fbuf, buf, len) == 0, "file and buffer states differ");
        free(fbuf);
        /* the file loads into a session with a larger context */
        gemfa_session_options *o;
        gemfa_session_options_new(&o);
        gemfa_session_options_set_max_context(o, (int64_t)(max_ctx ? max_ctx + 5 : 0));
        cr_assert_eq(gemfa_session_load_file(ctx, o, path, &f), GEMFA_OK, "%s", gemfa_last_error());
        gemfa_session_options_free(o);
        unlink(path);
        gemfa_session *g = NULL;
        cr_assert_eq(gemfa_session_fork(s, &g), GEMFA_OK);
        char what[96];
        snprintf(what, sizeof what, "%s chunk %lld n=%zu buffer", model, (long long)chunk, n);
        expect_same_future(s, l, V, what);
        snprintf(what, sizeof what, "%s chunk %lld n=%zu file", model, (long long)chunk, n);
        expect_same_future(g, f, V, what);
        free(buf);
        gemfa_session_free(g);
        gemfa_session_free(f);
        gemfa_session_free(l);
        gemfa_session_free(s);
    }
    free(ids);
    gemfa_context_free(other);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}

Test(state, roundtrip_tiny_f32) { roundtrip("tiny-gemma3n", GEMFA_WEIGHTS_F32, 0, 0); }
Test(state, roundtrip_tiny_chunk3) { roundtrip("tiny-gemma3n", GEMFA_WEIGHTS_F32, 3, 0); }
Test(state, roundtrip_tiny_small_context) { roundtrip("tiny-gemma3n", GEMFA_WEIGHTS_F32, 0, 64); }
Test(state, roundtrip_tiny10_int8) { roundtrip("runtime/tiny10-s1", GEMFA_WEIGHTS_INT8, 0, 0); }
Test(state, roundtrip_tiny10_auto) { roundtrip("runtime/tiny10-s1", GEMFA_WEIGHTS_AUTO, 5, 0); }

/* A state saved by a session whose rings hold more than the loading
 * context's (chunk 256 → 3): the loaded ring keeps the latest positions. */
Test(state, load_into_smaller_ring)
{
    gemfa_model *m = rt_load("tiny-gemma3n", GEMFA_WEIGHTS_F32);
    gemfa_context *big = rt_context(m), *small = rt_context(m);
    cr_assert_eq(gf_context_set_chunk(small, 3), GEMFA_OK);
    size_t N;
    int32_t *ids = rt_golden_i32("runtime/tiny10-s1", "long.tokens.i32.bin", &N);
    gemfa_session *s = rt_session(big, 0), *l = NULL;
    cr_assert_eq(gemfa_decode(s, ids, 100, NULL), GEMFA_OK);
    size_t len;
    void *buf = save(s, &len);
    cr_assert_eq(gemfa_session_load(small, NULL, buf, len, &l), GEMFA_OK, "%s", gemfa_last_error());
    expect_same_future(s, l, vocab(m), "smaller ring");
    free(buf);
    free(ids);
    gemfa_session_free(l);
    gemfa_session_free(s);
    gemfa_context_free(small);
    gemfa_context_free(big);
    gemfa_model_free(m);
}

typedef struct hostile {
    gemfa_model *m;
    gemfa_context *ctx;
    gemfa_session *s;
    unsigned char *buf;
    size_t len;
} hostile;

static hostile H;

static void hsetup(void)
{
    H.m = rt_load("tiny-gemma3n", GEMFA_WEIGHTS_F32);
    H.ctx = rt_context(H.m);
    H.s = rt_session(H.ctx, 32);
    const int32_t ids[] = {2, 6, 100, 475, 8, 617, 9, 10, 11, 12};
    cr_assert_eq(gemfa_decode(H.s, ids, 10, NULL), GEMFA_OK);
    H.buf = save(H.s, &H.len);
}

static void hteardown(void)
{
    free(H.buf);
    gemfa_session_free(H.s);
    gemfa_context_free(H.ctx);
    gemfa_model_free(H.m);
}

static gemfa_status try_load(const void *data, size_t size)
{
    gemfa_session *out = SENTINEL;
    gemfa_status st = gemfa_session_load(H.ctx, NULL, data, size, &out);
    cr_assert(st != GEMFA_OK || out != SENTINEL);
    if (st == GEMFA_OK)
        gemfa_session_free(out);
    else
        cr_assert_eq(out, SENTINEL, "a failed load wrote *out");
    return st;
}

/* Sets a header field and recomputes the header checksum, as an editor
 * that knows the format would. */
static unsigned char *edited(size_t off, const void *val, size_t n)
{
    unsigned char *b = malloc(H.len);
    memcpy(b, H.buf, H.len);
    memcpy(b + off, val, n);
    uint32_t crc = gf_crc32c(0, b, 92);
    memcpy(b + 92, &crc, 4);
    return b;
}

static void expect_edit(size_t off, uint64_t v, size_t n, gemfa_status want, const char *what)
{
    unsigned char *b = edited(off, &v, n);
    gemfa_status st = try_load(b, H.len);
    cr_expect_eq(st, want, "%s: %s, want %s (%s)", what, gemfa_status_name(st),
                 gemfa_status_name(want), gemfa_last_error());
    free(b);
}

TestSuite(state_hostile, .init = hsetup, .fini = hteardown);

Test(state_hostile, arguments)
{
    size_t len = 0;
    gemfa_session *out = SENTINEL;
    cr_expect_eq(gemfa_session_save(NULL, NULL, 0, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_save(H.s, NULL, 0, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_save(H.s, NULL, 10, &len), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_save_file(NULL, "/tmp/x"), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_save_file(H.s, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_save_file(H.s, "/nonexistent-dir/state"), GEMFA_ERR_NOT_FOUND);
    cr_expect_eq(gemfa_session_load(NULL, NULL, H.buf, H.len, &out), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_load(H.ctx, NULL, NULL, H.len, &out), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_load(H.ctx, NULL, H.buf, H.len, NULL), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_load_file(NULL, NULL, "/tmp/x", &out), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_load_file(H.ctx, NULL, NULL, &out), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_load_file(H.ctx, NULL, "/nonexistent/state", &out), GEMFA_ERR_NOT_FOUND);
    cr_expect_eq(gemfa_session_load_file(H.ctx, NULL, "/tmp", &out), GEMFA_ERR_IO);
    cr_expect_eq(out, SENTINEL);
    /* max context: below the tokens held, above the model's */
    gemfa_session_options *o;
    gemfa_session_options_new(&o);
    gemfa_session_options_set_max_context(o, 9);
    cr_expect_eq(gemfa_session_load(H.ctx, o, H.buf, H.len, &out), GEMFA_ERR_CONTEXT_FULL);
    gemfa_session_options_set_max_context(o, 1 << 30);
    cr_expect_eq(gemfa_session_load(H.ctx, o, H.buf, H.len, &out), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_session_options_set_max_context(o, 10);
    cr_expect_eq(gemfa_session_load(H.ctx, o, H.buf, H.len, &out), GEMFA_OK);
    cr_expect_eq(gemfa_session_max_context(out), 10u);
    gemfa_session_free(out);
    gemfa_session_options_free(o);
    /* the saving session is unchanged, and saving twice gives the same bytes */
    size_t len2;
    void *again = save(H.s, &len2);
    cr_expect(len2 == H.len && memcmp(again, H.buf, H.len) == 0);
    free(again);
}

Test(state_hostile, every_truncation)
{
    for (size_t n = 0; n < H.len; n += n < 200 ? 1 : 97)
        cr_expect_eq(try_load(H.buf, n), GEMFA_ERR_FORMAT, "length %zu of %zu: %s", n, H.len,
                     gemfa_last_error());
    /* trailing bytes */
    unsigned char *b = malloc(H.len + 1);
    memcpy(b, H.buf, H.len);
    b[H.len] = 0;
    cr_expect_eq(try_load(b, H.len + 1), GEMFA_ERR_FORMAT);
    free(b);
    /* a truncated file */
    char path[] = "/tmp/gemfa_state_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, H.buf, H.len - 5), (ssize_t)(H.len - 5));
    close(fd);
    gemfa_session *out = SENTINEL;
    cr_expect_eq(gemfa_session_load_file(H.ctx, NULL, path, &out), GEMFA_ERR_FORMAT);
    cr_expect(strstr(gemfa_last_error(), path) != NULL, "%s", gemfa_last_error());
    cr_expect_eq(out, SENTINEL);
    unlink(path);
}

Test(state_hostile, every_bit_flip_detected)
{
    unsigned char *b = malloc(H.len);
    for (size_t i = 0; i < H.len; i += i < 128 ? 1 : 61) {
        memcpy(b, H.buf, H.len);
        b[i] ^= (unsigned char)(1u << (i % 8));
        gemfa_status st = try_load(b, H.len);
        cr_expect(st == GEMFA_ERR_FORMAT || (i >= 8 && i < 16 && st == GEMFA_ERR_UNSUPPORTED),
                  "flip at byte %zu: %s (%s)", i, gemfa_status_name(st), gemfa_last_error());
    }
    free(b);
}

Test(state_hostile, edited_fields)
{
    expect_edit(8, 2, 4, GEMFA_ERR_UNSUPPORTED, "future version");
    expect_edit(8, 0, 4, GEMFA_ERR_FORMAT, "version 0");
    expect_edit(12, 128, 4, GEMFA_ERR_FORMAT, "header size");
    expect_edit(16, 0x1234, 8, GEMFA_ERR_MODEL_MISMATCH, "fingerprint");
    expect_edit(24, 2, 4, GEMFA_ERR_UNSUPPORTED, "kv type");
    expect_edit(24, 1, 4, GEMFA_ERR_FORMAT, "kv type f16 on an f32 payload");
    expect_edit(28, 3, 4, GEMFA_ERR_UNSUPPORTED, "unknown flag");
    expect_edit(28, 0, 4, GEMFA_ERR_FORMAT, "logits flag cleared: size mismatch");
    expect_edit(32, 11, 8, GEMFA_ERR_FORMAT, "n_tokens + 1");
    expect_edit(32, UINT64_MAX / 4, 8, GEMFA_ERR_FORMAT, "huge n_tokens");
    expect_edit(40, 3, 8, GEMFA_ERR_FORMAT, "ring_start inside the window");
    expect_edit(40, 11, 8, GEMFA_ERR_FORMAT, "ring_start past the tokens");
    expect_edit(48, 5, 8, GEMFA_ERR_FORMAT, "max context below the tokens");
    expect_edit(48, UINT64_MAX, 8, GEMFA_ERR_FORMAT, "huge max context");
    expect_edit(56, 24, 4, GEMFA_ERR_MODEL_MISMATCH, "layers");
    expect_edit(60, 7, 4, GEMFA_ERR_MODEL_MISMATCH, "kv heads");
    expect_edit(64, 1u << 31, 4, GEMFA_ERR_MODEL_MISMATCH, "head dim");
    expect_edit(68, 9, 4, GEMFA_ERR_MODEL_MISMATCH, "window");
    expect_edit(72, 1u << 20, 8, GEMFA_ERR_MODEL_MISMATCH, "vocabulary");
    expect_edit(80, 12, 8, GEMFA_ERR_FORMAT, "payload size");
    expect_edit(88, 12, 4, GEMFA_ERR_FORMAT, "payload checksum");
    /* an invalid token id with a correct payload checksum */
    unsigned char *b = malloc(H.len);
    memcpy(b, H.buf, H.len);
    const int32_t bad = 1 << 30;
    memcpy(b + 96 + 4 * 3, &bad, 4);
    uint32_t crc = gf_crc32c(0, b + 96, H.len - 96);
    memcpy(b + 88, &crc, 4);
    crc = gf_crc32c(0, b, 92);
    memcpy(b + 92, &crc, 4);
    cr_expect_eq(try_load(b, H.len), GEMFA_ERR_FORMAT, "%s", gemfa_last_error());
    cr_expect(strstr(gemfa_last_error(), "token 3") != NULL, "%s", gemfa_last_error());
    /* K/V entries the model cannot produce (NaN, huge), checksums recomputed */
    const size_t kv_at = 96 + 10 * 4 + vocab(H.m) * 4;
    const float odd[] = {NAN, 1e30f, -INFINITY};
    const size_t where[] = {kv_at, kv_at + 4 * 777, H.len - 4};
    for (size_t k = 0; k < 3; k++) {
        memcpy(b, H.buf, H.len);
        memcpy(b + where[k], &odd[k], 4);
        crc = gf_crc32c(0, b + 96, H.len - 96);
        memcpy(b + 88, &crc, 4);
        crc = gf_crc32c(0, b, 92);
        memcpy(b + 92, &crc, 4);
        cr_expect_eq(try_load(b, H.len), GEMFA_ERR_FORMAT, "odd value %zu: %s", k,
                     gemfa_last_error());
        cr_expect(strstr(gemfa_last_error(), "beyond what the model produces") != NULL, "%s",
                  gemfa_last_error());
    }
    free(b);
    /* not a state at all */
    cr_expect_eq(try_load("hello world, this is not a state", 32), GEMFA_ERR_FORMAT);
}

/* States of another model, of the same checkpoint with other weight
 * types, and of a context of another model. */
Test(state_hostile, other_models)
{
    const struct {
        const char *dir;
        gemfa_weight_type w;
    } others[] = {{"runtime/tiny10-s1", GEMFA_WEIGHTS_F32},
                  {"tiny-gemma3n", GEMFA_WEIGHTS_INT8},
                  {"tiny-gemma3n", GEMFA_WEIGHTS_F16},
                  {"tiny-gemma3n", GEMFA_WEIGHTS_AUTO}};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        gemfa_model *m = rt_load(others[i].dir, others[i].w);
        gemfa_context *ctx = rt_context(m);
        gemfa_session *s = rt_session(ctx, 32), *out = SENTINEL;
        const int32_t ids[] = {2, 6, 100};
        cr_assert_eq(gemfa_decode(s, ids, 3, NULL), GEMFA_OK);
        size_t len;
        void *buf = save(s, &len);
        gemfa_status st = gemfa_session_load(H.ctx, NULL, buf, len, &out);
        cr_expect_eq(st, GEMFA_ERR_MODEL_MISMATCH, "%s/%d: %s (%s)", others[i].dir, others[i].w,
                     gemfa_status_name(st), gemfa_last_error());
        cr_expect_eq(out, SENTINEL);
        /* and ours into theirs */
        st = gemfa_session_load(ctx, NULL, H.buf, H.len, &out);
        cr_expect_eq(st, GEMFA_ERR_MODEL_MISMATCH, "into %s: %s", others[i].dir,
                     gemfa_last_error());
        cr_expect_eq(out, SENTINEL);
        free(buf);
        gemfa_session_free(s);
        gemfa_context_free(ctx);
        gemfa_model_free(m);
    }
}

/* The fingerprint covers weight contents, not only shapes: the same
 * checkpoint loaded twice agrees, one changed norm gain differs. */
Test(state_hostile, fingerprint_sees_weights)
{
    gemfa_model *m = rt_load("tiny-gemma3n", GEMFA_WEIGHTS_F32);
    const uint64_t a = gf_model_fingerprint(H.m), b = gf_model_fingerprint(m);
    cr_expect_eq(a, b);
    float *gain = (float *)m->final_norm;
    gain[3] += 1.0f;
    cr_expect_neq(gf_model_fingerprint(m), a);
    gain[3] -= 1.0f;
    float *q = (float *)m->layers[0].q_proj.data; /* model-owned: converted to f32 */
    q[0] += 1.0f;
    cr_expect_neq(gf_model_fingerprint(m), a);
    q[0] -= 1.0f;
    cr_expect_eq(gf_model_fingerprint(m), a);
    gemfa_model_free(m);
}

Test(state_hostile, allocation_failures)
{
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
        gemfa_session *out = SENTINEL;
        gf_alloc_fail_after(k);
        gemfa_status st = gemfa_session_load(H.ctx, NULL, H.buf, H.len, &out);
        gf_alloc_fail_after(-1);
        if (st == GEMFA_OK) {
            ok = 1;
            gemfa_session_free(out);
        } else {
            cr_expect_eq(st, GEMFA_ERR_OUT_OF_MEMORY, "k=%ld: %s", k, gemfa_last_error());
            cr_expect_eq(out, SENTINEL);
        }
    }
    cr_expect(ok);
}

/* The CRC32C implementation against published check values. */
Test(state_hostile, crc32c_check_values)
{
    cr_expect_eq(gf_crc32c(0, "123456789", 9), 0xE3069283u);
    unsigned char zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    cr_expect_eq(gf_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    cr_expect_eq(gf_crc32c(0, ones, 32), 0x62A8AB43u);
    unsigned char inc[32];
    for (int i = 0; i < 32; i++)
        inc[i] = (unsigned char)i;
    cr_expect_eq(gf_crc32c(0, inc, 32), 0x46DD794Eu);
    /* incremental = one shot */
    cr_expect_eq(gf_crc32c(gf_crc32c(0, inc, 13), inc + 13, 19), 0x46DD794Eu);
}

/* KV types: an f16 session's state records f16, is half the K/V bytes of
 * the f32 one, loads back as f16 (buffer and file) and continues bit for
 * bit; options asking for another type are refused, naming both; a
 * truncated f16 session keeps its type. */
static gemfa_session *session_of_type(gemfa_context *ctx, gemfa_kv_type t)
{
    gemfa_session_options *o;
    cr_assert_eq(gemfa_session_options_new(&o), GEMFA_OK);
    cr_assert_eq(gemfa_session_options_set_kv_type(o, t), GEMFA_OK);
    gemfa_session *s = NULL;
    cr_assert_eq(gemfa_session_new(ctx, o, &s), GEMFA_OK, "%s", gemfa_last_error());
    gemfa_session_options_free(o);
    cr_assert_eq(gemfa_session_kv_type(s), t);
    return s;
}

Test(state, kv_types)
{
    gemfa_model *m = rt_load("runtime/tiny10-s1", GEMFA_WEIGHTS_F32);
    gemfa_context *ctx = rt_context(m), *other = rt_context(m);
    const size_t V = vocab(m);
    size_t N;
    int32_t *ids = rt_golden_i32("runtime/tiny10-s1", "long.tokens.i32.bin", &N);
    gemfa_session *s32 = session_of_type(ctx, GEMFA_KV_F32);
    gemfa_session *s16 = session_of_type(ctx, GEMFA_KV_F16);
    cr_expect_eq(2 * gemfa_session_kv_bytes(s16), gemfa_session_kv_bytes(s32));
    cr_assert_eq(gemfa_decode(s32, ids, 200, NULL), GEMFA_OK);
    cr_assert_eq(gemfa_decode(s16, ids, 200, NULL), GEMFA_OK);
    size_t len32, len16;
    unsigned char *b32 = save(s32, &len32), *b16 = save(s16, &len16);
    cr_expect_eq(b16[24], GEMFA_KV_F16, "the header records the KV type");
    cr_expect_eq(b32[24], GEMFA_KV_F32);
    const size_t fixed = 96 + 200 * 4 + V * 4; /* header, ids, logits */
    cr_expect_eq(2 * (len16 - fixed), len32 - fixed, "f16 K/V take half the bytes");

    gemfa_session *l = NULL;
    cr_assert_eq(gemfa_session_load(other, NULL, b16, len16, &l), GEMFA_OK, "%s",
                 gemfa_last_error());
    cr_expect_eq(gemfa_session_kv_type(l), GEMFA_KV_F16);
    gemfa_session *g = NULL;
    cr_assert_eq(gemfa_session_fork(s16, &g), GEMFA_OK);
    cr_expect_eq(gemfa_session_kv_type(g), GEMFA_KV_F16);
    expect_same_future(g, l, V, "f16 state");

    /* an explicit type must match the state's */
    gemfa_session_options *o;
    gemfa_session_options_new(&o);
    gemfa_session_options_set_kv_type(o, GEMFA_KV_F32);
    gemfa_session *bad = SENTINEL;
    cr_expect_eq(gemfa_session_load(other, o, b16, len16, &bad), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(bad, SENTINEL);
    cr_expect(strstr(gemfa_last_error(), "f16") && strstr(gemfa_last_error(), "f32"), "%s",
              gemfa_last_error());
    gemfa_session_options_set_kv_type(o, GEMFA_KV_F16);
    cr_expect_eq(gemfa_session_load(other, o, b32, len32, &bad), GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_session *ok = NULL;
    cr_expect_eq(gemfa_session_load(other, o, b16, len16, &ok), GEMFA_OK);
    gemfa_session_free(ok);
    cr_expect_eq(gemfa_session_options_set_kv_type(o, (gemfa_kv_type)7),
                 GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(gemfa_session_options_set_kv_type(NULL, GEMFA_KV_F16),
                 GEMFA_ERR_INVALID_ARGUMENT);
    gemfa_session_options_free(o);

    /* truncate keeps the type and continues like a fresh f16 session */
    cr_assert_eq(gemfa_session_truncate(s16, 20), GEMFA_OK, "%s", gemfa_last_error());
    cr_expect_eq(gemfa_session_kv_type(s16), GEMFA_KV_F16);
    gemfa_session *fresh = session_of_type(ctx, GEMFA_KV_F16);
    cr_assert_eq(gemfa_decode(fresh, ids, 20, NULL), GEMFA_OK);
    float *a = rt_decode_all(s16, ALT, N_ALT, V), *b = rt_decode_all(fresh, ALT, N_ALT, V);
    cr_expect_leq(rt_max_abs_diff(a, b, N_ALT * V), 2e-2);
    free(a);
    free(b);

    /* names */
    gemfa_kv_type t = GEMFA_KV_F32;
    cr_expect_eq(gemfa_kv_type_parse("f16", &t), GEMFA_OK);
    cr_expect_eq(t, GEMFA_KV_F16);
    cr_expect_eq(gemfa_kv_type_parse("bf16", &t), GEMFA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(t, GEMFA_KV_F16);
    cr_expect_str_eq(gemfa_kv_type_name(GEMFA_KV_F32), "f32");
    cr_expect_str_eq(gemfa_kv_type_name((gemfa_kv_type)9), "unknown");

    gemfa_session_free(fresh);
    gemfa_session_free(g);
    gemfa_session_free(l);
    gemfa_session_free(s16);
    gemfa_session_free(s32);
    free(b16);
    free(b32);
    free(ids);
    gemfa_context_free(other);
    gemfa_context_free(ctx);
    gemfa_model_free(m);
}
