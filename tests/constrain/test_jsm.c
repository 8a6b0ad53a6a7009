/* test_jsm.c — the JSON byte machine on whole texts: what it accepts as a
 * complete value, as a prefix only, and what it refuses, for "any JSON"
 * and for schemas; schema compile errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "constrain/jsm.h"
#include "constrain/schema.h"
#include "gemfa.h"

enum { REFUSED, PREFIX, COMPLETE };

static int run(const gf_jsm *m, const char *text)
{
    gf_jstate s;
    gf_jsm_start(m, &s);
    for (size_t i = 0; text[i]; i++)
        if (gf_jsm_step(m, &s, (uint8_t)text[i]) != GF_STEP_OK)
            return REFUSED;
    return gf_jsm_complete(m, &s) ? COMPLETE : PREFIX;
}

static void compile(const char *schema, gf_jsm *m)
{
    gemfa_status st = gf_schema_compile(schema, schema ? strlen(schema) : 0, m);
    cr_assert_eq(st, GEMFA_OK, "%s: %s", schema ? schema : "(any)", gemfa_last_error());
}

static void expect(const gf_jsm *m, const char *text, int want)
{
    int got = run(m, text);
    static const char *names[] = {"refused", "a prefix", "complete"};
    cr_expect_eq(got, want, "%s: %s, expected %s", text, names[got], names[want]);
}

Test(jsm, any_json)
{
    gf_jsm m;
    compile(NULL, &m);
    expect(&m, "{}", COMPLETE);
    expect(&m, " {\"a\": [1, 2.5, -0.5e+10, true, false, null, \"x\"]}", COMPLETE);
    expect(&m, "[]", COMPLETE);
    expect(&m, "\"\"", COMPLETE);
    expect(&m, "0", COMPLETE);
    expect(&m, "-", PREFIX);
    expect(&m, "12", COMPLETE);
    expect(&m, "1.", PREFIX);
    expect(&m, "1e", PREFIX);
    expect(&m, "1e5", COMPLETE);
    expect(&m, "01", REFUSED);
    expect(&m, "-01", REFUSED);
    expect(&m, ".5", REFUSED);
    expect(&m, "1.e5", REFUSED);
    expect(&m, "1e5555", REFUSED);
    expect(&m, "tru", PREFIX);
    expect(&m, "true", COMPLETE);
    expect(&m, "truex", REFUSED);
    expect(&m, "nul", PREFIX);
    expect(&m, "{\"a\":1,}", REFUSED);
    expect(&m, "[1,]", REFUSED);
    expect(&m, "[,1]", REFUSED);
    expect(&m, "{1:2}", REFUSED);
    expect(&m, "{\"a\" 1}", REFUSED);
    expect(&m, "{\"a\":1 \"b\":2}", REFUSED);
    expect(&m, "[1] [2]", REFUSED);
    expect(&m, "[1] ", COMPLETE);
    expect(&m, "[1]  ", REFUSED); /* trailing whitespace: one byte at depth 0 */
    expect(&m, "  1", REFUSED);
    expect(&m, "[   1]", COMPLETE);   /* 3 bytes at depth 1 */
    expect(&m, "[    1]", REFUSED);   /* 4 */
    expect(&m, "[[     1]]", COMPLETE);/* 5 at depth 2 */
    expect(&m, "[[      1]]", REFUSED);
    expect(&m, "\"a\\n\\u00e9\\\"\"", COMPLETE);
    expect(&m, "\"\\x\"", REFUSED);
    expect(&m, "\"\\ud800\"", REFUSED);
    expect(&m, "\"\\uDFFF\"", REFUSED);
    expect(&m, "\"\\ud7ff\\ue000\"", COMPLETE);
    expect(&m, "\"a\nb\"", REFUSED); /* raw control byte */
    expect(&m, "\"سلام دنیا\"", COMPLETE);
    expect(&m, "\"\xd8", PREFIX);
    expect(&m, "\"\xd8\"", REFUSED);
    expect(&m, "\"\xc0\x80\"", REFUSED);     /* overlong */
    expect(&m, "\"\xed\xa0\x80\"", REFUSED); /* encoded surrogate */
    expect(&m, "\"\xf4\x90\x80\x80\"", REFUSED); /* above U+10FFFF */
    expect(&m, "\"\xf0\x9f\x98\x80\"", COMPLETE);
    expect(&m, "{\"\":{\"\":[]}}", COMPLETE);
    expect(&m, "1234567890123456789", COMPLETE);
    expect(&m, "12345678901234567890", REFUSED);
    gf_jsm_free(&m);
}

Test(jsm, depth_limit)
{
    gf_jsm m;
    compile("{}", &m);
    char deep[GF_JSM_MAX_DEPTH + 2];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    deep[GF_JSM_MAX_DEPTH - 1] = '\0'; /* 63 open + the root frame */
    expect(&m, deep, PREFIX);
    deep[GF_JSM_MAX_DEPTH - 1] = '[';
    deep[GF_JSM_MAX_DEPTH] = '\0';
    expect(&m, deep, REFUSED);
    gf_jsm_free(&m);
}

Test(jsm, object_schema)
{
    gf_jsm m;
    compile("{\"type\":\"object\",\"properties\":{"
            "\"name\":{\"type\":\"string\",\"maxLength\":3},"
            "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
            "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"bc\",1,12]},\"maxItems\":2},"
            "\"ok\":{\"type\":\"boolean\"}},"
            "\"required\":[\"name\",\"ok\"],\"additionalProperties\":false}", &m);
    expect(&m, "{\"name\":\"abc\",\"ok\":true}", COMPLETE);
    expect(&m, "{\"name\":\"سلام\",\"ok\":true}", REFUSED); /* 4 characters */
    expect(&m, "{\"name\":\"سلا\",\"ok\":true}", COMPLETE);
    expect(&m, "{\"ok\":true}", REFUSED);                    /* name is required */
    expect(&m, "{\"name\":\"\",\"age\":150,\"ok\":false}", COMPLETE);
    expect(&m, "{\"name\":\"\",\"age\":151,\"ok\":false}", REFUSED);
    expect(&m, "{\"name\":\"\",\"age\":1500", REFUSED);
    expect(&m, "{\"name\":\"\",\"age\":-1", REFUSED);
    expect(&m, "{\"name\":\"\",\"age\":-0,\"ok\":false}", COMPLETE);
    expect(&m, "{\"name\":\"\",\"age\":1.5", REFUSED);
    expect(&m, "{\"name\":\"\",\"age\":01", REFUSED);
    expect(&m, "{\"name\":\"\",\"tags\":[\"a\",12],\"ok\":true}", COMPLETE);
    expect(&m, "{\"name\":\"\",\"tags\":[\"a\",12,1]", REFUSED); /* maxItems */
    expect(&m, "{\"name\":\"\",\"tags\":[\"b\"", REFUSED);
    expect(&m, "{\"name\":\"\",\"tags\":[123", REFUSED);
    expect(&m, "{\"name\":\"\",\"tags\":[1 ,1]", PREFIX);
    expect(&m, "{\"name\":\"\",\"ok\":true,\"age\":1}", REFUSED); /* schema order */
    expect(&m, "{\"name\":\"\",\"extra\":1", REFUSED);
    expect(&m, "{\"name\":\"\",\"ok\":true", PREFIX);
    expect(&m, "{\"name\":\"\",\"ok\":true}", COMPLETE);
    expect(&m, "{}", REFUSED);
    expect(&m, "[]", REFUSED);
    gf_jsm_free(&m);
}

Test(jsm, number_bounds)
{
    gf_jsm m;
    compile("{\"type\":\"number\",\"minimum\":-2.5,\"exclusiveMaximum\":10}", &m);
    expect(&m, "-2.5", COMPLETE);
    expect(&m, "-2.50000001", REFUSED);
    expect(&m, "-2.4999", COMPLETE);
    expect(&m, "9.999999", COMPLETE);
    expect(&m, "10", REFUSED);
    expect(&m, "1", COMPLETE);
    expect(&m, "1e1", REFUSED); /* no exponents with bounds */
    expect(&m, "-3", REFUSED);
    expect(&m, "-", PREFIX);
    gf_jsm_free(&m);
    compile("{\"type\":\"integer\",\"minimum\":10,\"maximum\":20}", &m);
    expect(&m, "1", PREFIX);   /* can still become 10..19 */
    expect(&m, "2", PREFIX);
    expect(&m, "3", REFUSED);
    expect(&m, "20", COMPLETE);
    expect(&m, "200", REFUSED);
    expect(&m, "-", REFUSED);
    expect(&m, "15.0", REFUSED);
    gf_jsm_free(&m);
    compile("{\"type\":\"integer\",\"exclusiveMinimum\":-1.5,\"maximum\":0.5}", &m);
    expect(&m, "-1", COMPLETE);
    expect(&m, "-2", REFUSED);
    expect(&m, "0", COMPLETE);
    expect(&m, "1", REFUSED);
    gf_jsm_free(&m);
}

Test(jsm, strings_and_unions)
{
    gf_jsm m;
    compile("{\"type\":[\"string\",\"null\"],\"minLength\":2,\"maxLength\":2}", &m);
    expect(&m, "null", COMPLETE);
    expect(&m, "\"ab\"", COMPLETE);
    expect(&m, "\"a\"", REFUSED);
    expect(&m, "\"\\n\\u0041\"", COMPLETE);
    expect(&m, "\"abc", REFUSED);
    expect(&m, "true", REFUSED);
    expect(&m, "1", REFUSED);
    gf_jsm_free(&m);
    compile("{\"enum\":[\"x\\\"y\", 1.5, [1,{\"a\":null}], \"سلام\"]}", &m);
    expect(&m, "\"x\\\"y\"", COMPLETE);
    expect(&m, "1.5", COMPLETE);
    expect(&m, "[1,{\"a\":null}]", COMPLETE);
    expect(&m, "\"سلام\"", COMPLETE);
    expect(&m, "1", PREFIX);
    expect(&m, "2", REFUSED);
    gf_jsm_free(&m);
    compile("{\"type\":\"array\",\"minItems\":2}", &m);
    expect(&m, "[1]", REFUSED);
    expect(&m, "[1,\"a\"]", COMPLETE);
    gf_jsm_free(&m);
    compile("{\"type\":\"object\"}", &m);
    expect(&m, "{\"a\":[{\"b\":1}],\"a\":2}", COMPLETE);
    gf_jsm_free(&m);
}

static void compile_fails(const char *schema, gemfa_status want, const char *word)
{
    gf_jsm m;
    gemfa_status st = gf_schema_compile(schema, strlen(schema), &m);
    cr_expect_eq(st, want, "%s: got %s (%s)", schema, gemfa_status_name(st), gemfa_last_error());
    if (word)
        cr_expect(strstr(gemfa_last_error(), word) != NULL, "%s: message '%s' lacks '%s'", schema,
                  gemfa_last_error(), word);
    cr_expect_eq(m.nodes, NULL);
}

Test(jsm, schema_errors)
{
    compile_fails("{", GEMFA_ERR_FORMAT, NULL);
    compile_fails("{\"type\":\"string\",\"pattern\":\"a+\"}", GEMFA_ERR_UNSUPPORTED, "pattern");
    compile_fails("{\"properties\":{\"a\":{\"format\":\"date\"}}}", GEMFA_ERR_UNSUPPORTED,
                  "properties.a");
    compile_fails("{\"anyOf\":[{}]}", GEMFA_ERR_UNSUPPORTED, "anyOf");
    compile_fails("{\"$ref\":\"#/x\"}", GEMFA_ERR_UNSUPPORTED, "$ref");
    compile_fails("false", GEMFA_ERR_UNSUPPORTED, NULL);
    compile_fails("{\"type\":\"strin\"}", GEMFA_ERR_INVALID_ARGUMENT, "type");
    compile_fails("{\"type\":[]}", GEMFA_ERR_INVALID_ARGUMENT, "type");
    compile_fails("{\"type\":5}", GEMFA_ERR_INVALID_ARGUMENT, "type");
    compile_fails("{\"maxLength\":-1}", GEMFA_ERR_INVALID_ARGUMENT, "maxLength");
    compile_fails("{\"maxLength\":1.5}", GEMFA_ERR_INVALID_ARGUMENT, "maxLength");
    compile_fails("{\"minLength\":3,\"maxLength\":2}", GEMFA_ERR_INVALID_ARGUMENT, NULL);
    compile_fails("{\"minimum\":3,\"maximum\":2}", GEMFA_ERR_INVALID_ARGUMENT, NULL);
    compile_fails("{\"type\":\"integer\",\"minimum\":2.1,\"maximum\":2.9}",
                  GEMFA_ERR_INVALID_ARGUMENT, NULL);
    compile_fails("{\"minimum\":\"1\"}", GEMFA_ERR_INVALID_ARGUMENT, "minimum");
    compile_fails("{\"minimum\":1e30}", GEMFA_ERR_UNSUPPORTED, "minimum");
    compile_fails("{\"required\":[\"a\"]}", GEMFA_ERR_UNSUPPORTED, "\"a\"");
    compile_fails("{\"properties\":[]}", GEMFA_ERR_INVALID_ARGUMENT, NULL);
    compile_fails("{\"enum\":3}", GEMFA_ERR_INVALID_ARGUMENT, "enum");
    compile_fails("{\"type\":\"string\",\"enum\":[1,2]}", GEMFA_ERR_INVALID_ARGUMENT, "enum");
    compile_fails("{\"items\":[{}]}", GEMFA_ERR_UNSUPPORTED, "items");
    compile_fails("[]", GEMFA_ERR_INVALID_ARGUMENT, NULL);
    compile_fails("{\"properties\":{\"a\":{},\"a\":{}}}", GEMFA_ERR_INVALID_ARGUMENT, "twice");
    /* 65 properties */
    char big[4096] = "{\"properties\":{";
    for (int i = 0; i < 65; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"p%d\":{}", i ? "," : "", i);
    strcat(big, "}}");
    compile_fails(big, GEMFA_ERR_UNSUPPORTED, "64");
    /* nesting beyond the schema depth limit */
    char nest[2048] = "";
    for (int i = 0; i < 40; i++)
        strcat(nest, "{\"items\":");
    strcat(nest, "{}");
    for (int i = 0; i < 40; i++)
        strcat(nest, "}");
    compile_fails(nest, GEMFA_ERR_UNSUPPORTED, "deeper");
}

Test(jsm, annotations_ignored)
{
    gf_jsm m;
    compile("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"title\":\"T\","
            "\"description\":\"d\",\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
            "\"string\",\"default\":\"x\",\"examples\":[\"y\"]}},\"additionalProperties\":"
            "{\"type\":\"number\"}}", &m);
    expect(&m, "{\"a\":\"z\"}", COMPLETE);
    expect(&m, "{}", COMPLETE);
    gf_jsm_free(&m);
}
