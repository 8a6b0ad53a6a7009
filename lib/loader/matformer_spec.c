/* matformer_spec.c — the MatFormer spec text: a preset name, or
 * "ffn=W[,W...][:skip=I[,I...]]" / "skip=I[,I...]".  Syntax only; the
 * model checks are in matformer.c.  Strict: no spaces, signs, empty
 * entries or trailing separators, numbers below 10^9. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/status.h"
#include "loader/matformer.h"

/* Google's slicing table (datasets google/gemma3n-slicing-configs,
 * "Config for official E2B Model"): E4B -> E2B, FFN 2048*4 everywhere,
 * layers 20..24 skipped. */
static const gf_mf_preset presets[] = {
    {"e2b", 35, 15, 8192, 8192, 20, 24},
};

#define SHOWN 48 /* characters of a hostile spec quoted in messages */

/* A printable, bounded copy of the spec for messages. */
static void shown(const char *text, char out[SHOWN + 4])
{
    size_t i = 0;
    for (; text[i] && i < SHOWN; i++)
        out[i] = isprint((unsigned char)text[i]) ? text[i] : '?';
    if (text[i]) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

static gemfa_status bad(const char *who, const char *text, size_t at, const char *what)
{
    char s[SHOWN + 4];
    shown(text, s);
    return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                    "%s: matformer spec \"%s\": %s at offset %zu (expected a preset "
                    "name such as \"e2b\", or ffn=W[,W...][:skip=I[,I...]])",
                    who, s, what, at);
}

/* Parses a comma list of decimal numbers at text[*pos]; stops at ':' or
 * the end. */
static gemfa_status parse_list(const char *who, const char *text, size_t *pos, int64_t *vals,
                               int *n)
{
    *n = 0;
    size_t p = *pos;
    for (;;) {
        if (!isdigit((unsigned char)text[p]))
            return bad(who, text, p, text[p] ? "expected a number" : "missing number");
        int64_t v = 0;
        int digits = 0;
        for (; isdigit((unsigned char)text[p]); p++) {
            if (++digits > 9)
                return bad(who, text, p, "number too large");
            v = v * 10 + (text[p] - '0');
        }
        if (*n >= GF_MAX_LAYERS)
            return bad(who, text, p, "too many entries");
        vals[(*n)++] = v;
        if (text[p] == ',') {
            p++;
            continue;
        }
        if (text[p] == ':' || text[p] == '\0')
            break;
        return bad(who, text, p, "unexpected character");
    }
    *pos = p;
    return GEMFA_OK;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

gemfa_status gf_mf_parse(const char *text, const char *who, gf_mf_spec *out)
{
    if (!text || !*text)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "%s: matformer spec is %s", who,
                        text ? "empty" : "NULL");
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcasecmp(text, presets[i].name) == 0) {
            out->preset = &presets[i];
            return GEMFA_OK;
        }
    size_t p = 0;
    gemfa_status st;
    int64_t vals[GF_MAX_LAYERS];
    if (strncmp(text, "ffn=", 4) == 0) {
        p = 4;
        if ((st = parse_list(who, text, &p, out->widths, &out->n_widths)))
            return st;
        if (text[p] == ':')
            p++;
        else
            return GEMFA_OK;
    }
    if (strncmp(text + p, "skip=", 5) != 0)
        return bad(who, text, p, p ? "expected \"skip=\"" : "not a preset, \"ffn=\" or \"skip=\"");
    p += 5;
    int n = 0;
    if ((st = parse_list(who, text, &p, vals, &n)))
        return st;
    if (text[p] != '\0')
        return bad(who, text, p, "unexpected text after the skip list");
    for (int i = 0; i < n; i++)
        out->skips[i] = (int)vals[i];
    out->n_skips = n;
    qsort(out->skips, (size_t)n, sizeof out->skips[0], cmp_int);
    for (int i = 1; i < n; i++)
        if (out->skips[i] == out->skips[i - 1]) {
            char s[SHOWN + 4];
            shown(text, s);
            return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                            "%s: matformer spec \"%s\": layer %d is listed twice in skip=", who,
                            s, out->skips[i]);
        }
    return GEMFA_OK;
}
