/* test_safetensors.c — header validation of lib/loader/safetensors.c on
 * in-memory images: each malformed header gives FORMAT with a message
 * naming the file, the tensor and expected vs found. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "loader/safetensors.h"

/* An image: 8-byte length (or `len_field` when nonzero), header, data. */
static uint8_t *image(const char *header, size_t data_len, uint64_t len_field, size_t *size)
{
    size_t hl = strlen(header);
    *size = 8 + hl + data_len;
    uint8_t *b = calloc(1, *size);
    uint64_t n = len_field ? len_field : hl;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        b[8 + hl + i] = (uint8_t)i;
    return b;
}

static gemfa_status parse(const char *header, size_t data_len, uint64_t len_field)
{
    size_t size;
    uint8_t *b = image(header, data_len, len_field, &size);
    gf_st_file f;
    gemfa_status st = gf_st_parse(b, size, "x.safetensors", &f);
    if (st == GEMFA_OK)
        gf_st_file_close(&f);
    free(b);
    return st;
}

/* Asserts FORMAT and that every NULL-terminated needle is in the message. */
static void expect_format(const char *header, size_t data_len, const char *const *needles)
{
    gemfa_status st = parse(header, data_len, 0);
    cr_assert_eq(st, GEMFA_ERR_FORMAT, "header %s: got %s", header, gemfa_status_name(st));
    const char *msg = gemfa_last_error();
    cr_assert(strstr(msg, "x.safetensors"), "message does not name the file: %s", msg);
    for (size_t i = 0; needles && needles[i]; i++)
        cr_assert(strstr(msg, needles[i]), "message lacks '%s': %s", needles[i], msg);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(safetensors, valid_header)
{
    const char *h = "{\"__metadata__\": {\"format\": \"pt\"}, "
                    "\"b\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [8, 20]}, "
                    "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                    "\"s\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [20, 28]}, "
                    "\"e\": {\"dtype\": \"F16\", \"shape\": [0, 4], \"data_offsets\": [28, 28]}}  ";
    size_t size;
    uint8_t *b = image(h, 28, 0, &size);
    gf_st_file f;
    cr_assert_eq(gf_st_parse(b, size, "x.safetensors", &f), GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(f.n_tensors, 4);
    const gf_st_tensor *t = &f.tensors[0];
    cr_assert_str_eq(t->name, "b");
    cr_assert_eq(t->dtype, GF_ST_BF16);
    cr_assert_eq(t->n_dims, 2);
    cr_assert_eq(t->shape[1], 3);
    cr_assert_eq(t->n_elements, 6);
    cr_assert_eq((const uint8_t *)t->data, b + 8 + strlen(h) + 8);
    cr_assert_eq(f.tensors[2].n_dims, 0); /* a scalar has one element */
    cr_assert_eq(f.tensors[2].n_elements, 1);
    cr_assert_eq(f.tensors[3].n_elements, 0);
    gf_st_file_close(&f);
    free(b);
}

Test(safetensors, short_and_empty_files)
{
    gf_st_file f;
    cr_assert_eq(gf_st_parse((const uint8_t *)"", 0, "x.safetensors", &f), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "empty"), "%s", gemfa_last_error());
    cr_assert_eq(gf_st_parse((const uint8_t *)"\x02\0\0", 3, "x.safetensors", &f), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "3 bytes"), "%s", gemfa_last_error());
}

Test(safetensors, header_length_bounds)
{
    cr_assert_eq(parse("{}", 0, 3), GEMFA_ERR_FORMAT); /* one byte beyond the file */
    cr_assert(strstr(gemfa_last_error(), "header length 3 reaches past the end"), "%s",
              gemfa_last_error());
    cr_assert_eq(parse("{}", 0, UINT64_MAX), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "18446744073709551615"), "%s", gemfa_last_error());
    /* a zero length field */
    size_t size;
    uint8_t *b = image("{}", 0, 0, &size);
    memset(b, 0, 8);
    gf_st_file f;
    cr_assert_eq(gf_st_parse(b, size, "x.safetensors", &f), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "header length is 0"), "%s", gemfa_last_error());
    free(b);
    /* over the 100 MB limit, inside a (sparse) file that is big enough */
    size_t big = (size_t)GF_ST_MAX_HEADER + 16;
    uint8_t *huge = calloc(1, big);
    uint64_t n = GF_ST_MAX_HEADER + 1;
    for (int i = 0; i < 8; i++)
        huge[i] = (uint8_t)(n >> (8 * i));
    cr_assert_eq(gf_st_parse(huge, big, "x.safetensors", &f), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "exceeds the limit"), "%s", gemfa_last_error());
    free(huge);
}

Test(safetensors, broken_json)
{
    expect_format("{\"a\": {\"dtype\": \"F32\", ", 0, NEEDLES("header", "JSON"));
    expect_format("[1, 2]", 0, NEEDLES("JSON object", "array"));
    expect_format("{\"a\": \"\\ud800\"}", 0, NEEDLES("x.safetensors"));
    expect_format("{\"a\": 7}", 0, NEEDLES("tensor 'a'", "expected an object"));
    expect_format("{\"__metadata__\": [1]}", 0, NEEDLES("__metadata__", "an array"));
}

Test(safetensors, dtype_names)
{
    expect_format("{\"w\": {\"dtype\": \"Q4_0\", \"shape\": [2], \"data_offsets\": [0, 2]}}", 2,
                  NEEDLES("tensor 'w'", "unknown dtype \"Q4_0\"", "BF16"));
    expect_format("{\"w\": {\"dtype\": \"bf16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
                  NEEDLES("unknown dtype \"bf16\""));
    expect_format("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
                  NEEDLES("tensor 'w'", "\"dtype\" should be a string", "nothing"));
    expect_format("{\"w\": {\"dtype\": 5, \"shape\": [2], \"data_offsets\": [0, 4]}}", 4,
                  NEEDLES("\"dtype\" should be a string", "integer"));
}

Test(safetensors, shapes)
{
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1, 2], \"data_offsets\": [0, 8]}}", 8,
                  NEEDLES("tensor 'w'", "shape[0]", "negative"));
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 8]}}", 8,
                  NEEDLES("shape[0]", "non-integer"));
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 16]}}", 16,
                  NEEDLES("\"shape\" should be an array"));
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], "
                  "\"data_offsets\": [0, 4]}}",
                  4, NEEDLES("9 dimensions"));
    /* products that overflow 64 bits: dims or bytes */
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], "
                  "\"data_offsets\": [0, 4]}}",
                  4, NEEDLES("tensor 'w'", "overflows"));
    expect_format("{\"w\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], "
                  "\"data_offsets\": [0, 8]}}",
                  8, NEEDLES("tensor 'w'", "overflows"));
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [99999999999999999999], "
                  "\"data_offsets\": [0, 8]}}",
                  8, NEEDLES("shape[0]"));
}

Test(safetensors, byte_ranges)
{
    /* shape x dtype does not match the range */
    expect_format("{\"w\": {\"dtype\": \"BF16\", \"shape\": [3, 2], \"data_offsets\": [0, 8]}}", 8,
                  NEEDLES("tensor 'w'", "need 12 bytes", "hold 8"));
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8,
                  NEEDLES("data_offsets"));
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-8, 0]}}", 8,
                  NEEDLES("tensor 'w'", "a negative integer"));
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 0]}}", 8,
                  NEEDLES("end before begin"));
    /* past the end of the data section */
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 12,
                  NEEDLES("tensor 'w'", "[0, 16]", "12 bytes"));
    expect_format("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
                  "\"data_offsets\": [18446744073709551610, 18446744073709551614]}}",
                  12, NEEDLES("tensor 'w'"));
}

Test(safetensors, overlaps_and_duplicates)
{
    expect_format("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                  "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                  12, NEEDLES("tensor 'b'", "overlap tensor 'a'", "[4, 12)", "[0, 8)"));
    /* identical ranges */
    expect_format("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                  "\"b\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                  8, NEEDLES("overlap"));
    /* one inside another, listed first */
    expect_format("{\"in\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}, "
                  "\"out\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
                  16, NEEDLES("overlap"));
    expect_format("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                  "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
                  16, NEEDLES("tensor 'a' appears twice"));
    /* empty tensors may sit anywhere inside the data */
    cr_assert_eq(parse("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
                       "\"z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}}",
                       8, 0),
                 GEMFA_OK, "%s", gemfa_last_error());
}

Test(safetensors, file_errors)
{
    gf_st_file f;
    cr_assert_eq(gf_st_file_open("/nonexistent/x.safetensors", &f), GEMFA_ERR_NOT_FOUND);
    cr_assert(strstr(gemfa_last_error(), "/nonexistent/x.safetensors"));
    char *dir = tl_tmpdir();
    cr_assert_eq(gf_st_file_open(dir, &f), GEMFA_ERR_IO); /* a directory */
    tl_write(dir, "empty.safetensors", "", 0);
    char *p = tl_path(dir, "empty.safetensors");
    cr_assert_eq(gf_st_file_open(p, &f), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "empty.safetensors"), "%s", gemfa_last_error());
    cr_assert(strstr(gemfa_last_error(), "empty file"), "%s", gemfa_last_error());
    free(p);
    tl_rmtree(dir);
}

Test(safetensors, shard_set_of_the_tiny_model)
{
    gf_shard_set *set = NULL;
    cr_assert_eq(gf_shard_set_open(tl_tiny_dir(), &set), GEMFA_OK, "%s", gemfa_last_error());
    cr_assert_eq(set->n_files, 2);
    cr_assert_not_null(set->index_path);
    const gf_st_tensor *t = gf_shard_set_find(set, "model.language_model.layers.24.mlp.up_proj.weight");
    cr_assert_not_null(t);
    cr_assert_eq(t->dtype, GF_ST_BF16);
    cr_assert_eq(t->shape[0], 128);
    cr_assert_null(gf_shard_set_find(set, "model.language_model.layers.25.mlp.up_proj.weight"));
    cr_assert_null(gf_shard_set_find(set, ""));
    /* the vision tower is indexed (validated) but never read */
    cr_assert_not_null(gf_shard_set_find(set, "model.audio_tower.conformer.0.attention.attn.per_dim_scale"));
    gf_shard_set_free(set);
    gf_shard_set_free(NULL);
}
