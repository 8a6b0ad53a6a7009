#include <criterion/criterion.h>
#include <string.h>

#include "core/json.h"
#include "gemfa.h"

static gf_json *parse_ok(const char *s)
{
    gf_json *j = NULL;
    gemfa_status st = gf_json_parse(s, strlen(s), "test", &j);
    cr_assert_eq(st, GEMFA_OK, "%s", gemfa_last_error());
    return j;
}

static gemfa_status parse_err(const char *s, size_t len)
{
    gf_json *j = NULL;
    gemfa_status st = gf_json_parse(s, len, "doc.json", &j);
    cr_assert_null(j);
    return st;
}

Test(json, objects_arrays_numbers)
{
    gf_json *j = parse_ok("{\"a\": [1, 2.5, -3, 1e3, 16384.0], \"b\": {\"c\": true}, \"d\": null,"
                          " \"a\": [7]}");
    const gf_json *a = gf_json_get(j, "a"); /* the last duplicate wins */
    cr_assert_eq(a->type, GF_JSON_ARRAY);
    cr_assert_eq(a->len, 1);
    int64_t v;
    cr_assert(gf_json_as_int(gf_json_at(a, 0), &v));
    cr_assert_eq(v, 7);
    int b;
    cr_assert(gf_json_as_bool(gf_json_get(gf_json_get(j, "b"), "c"), &b));
    cr_assert_eq(b, 1);
    cr_assert_eq(gf_json_get(j, "d")->type, GF_JSON_NULL);
    cr_assert_null(gf_json_get(j, "missing"));
    cr_assert_null(gf_json_at(a, 5));
    gf_json_free(j);

    j = parse_ok("[1, 2.5, -3, 1e3, 16384.0, 9223372036854775807, 99999999999999999999]");
    cr_assert(gf_json_as_int(gf_json_at(j, 0), &v) && v == 1);
    cr_assert_not(gf_json_as_int(gf_json_at(j, 1), &v));
    cr_assert(gf_json_as_int(gf_json_at(j, 2), &v) && v == -3);
    cr_assert(gf_json_as_int(gf_json_at(j, 3), &v) && v == 1000);
    cr_assert(gf_json_as_int(gf_json_at(j, 4), &v) && v == 16384);
    cr_assert(gf_json_as_int(gf_json_at(j, 5), &v) && v == INT64_MAX);
    cr_assert_not(gf_json_as_int(gf_json_at(j, 6), &v));
    gf_json_free(j);
}

Test(json, strings_keep_nul_and_unicode)
{
    gf_json *j = parse_ok("[\"a\\u0000b\", \"\\ud83d\\ude00\", \"\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85\"]");
    const gf_json *s = gf_json_at(j, 0);
    cr_assert_eq(s->len, 3);
    cr_assert_eq(memcmp(s->str, "a\0b", 3), 0);
    cr_assert_eq(gf_json_at(j, 1)->len, 4);
    cr_assert_str_eq(gf_json_at(j, 1)->str, "\xf0\x9f\x98\x80");
    cr_assert_eq(gf_json_at(j, 2)->len, 8);
    gf_json_free(j);
}

Test(json, rejects_lone_surrogates)
{
    cr_assert_eq(parse_err("[\"\\ud800x\"]", 11), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "surrogate"), "%s", gemfa_last_error());
    cr_assert_eq(parse_err("[\"\\udc00\"]", 10), GEMFA_ERR_FORMAT);
    /* an escaped backslash followed by text is not an escape */
    gf_json *j = parse_ok("[\"\\\\ud800\"]");
    cr_assert_str_eq(gf_json_at(j, 0)->str, "\\ud800");
    gf_json_free(j);
}

Test(json, errors_name_document_and_offset)
{
    cr_assert_eq(parse_err("{\"a\": [1, 2", 11), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "doc.json"), "%s", gemfa_last_error());
    cr_assert_eq(parse_err("", 0), GEMFA_ERR_FORMAT);
    cr_assert_eq(parse_err("\"\xff\"", 3), GEMFA_ERR_FORMAT);
    cr_assert_eq(parse_err("{} {}", 5), GEMFA_ERR_FORMAT);
}

Test(json, depth_is_bounded)
{
    char deep[2 * GF_JSON_MAX_DEPTH + 10];
    size_t n = 0;
    for (int i = 0; i < GF_JSON_MAX_DEPTH + 3; i++)
        deep[n++] = '[';
    for (int i = 0; i < GF_JSON_MAX_DEPTH + 3; i++)
        deep[n++] = ']';
    cr_assert_eq(parse_err(deep, n), GEMFA_ERR_FORMAT);
    cr_assert(strstr(gemfa_last_error(), "deeper"));
}
