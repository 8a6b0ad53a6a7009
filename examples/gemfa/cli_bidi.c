/* cli_bidi.c — visual-order lines with GNU FriBidi (see cli_bidi.h).  The
 * steps are those of fribidi_log2vis, split so that a long line can be
 * broken into terminal rows after the paragraph's levels and joining are
 * resolved and before each row is reordered (UAX #9, rule L1 onwards). */
#include "cli_bidi.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef GEMFA_HAVE_FRIBIDI
#include <fribidi.h>

/* UTF-8 to code points; -1 on invalid input (generated text never is). */
static long utf8_decode(const unsigned char *s, size_t n, FriBidiChar *out)
{
    long k = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n)
            return -1;
        uint32_t cp = len == 1 ? c : c & (0x7Fu >> len);
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        out[k++] = cp;
        i += len;
    }
    return k;
}

static size_t utf8_encode(uint32_t cp, char *p)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xC0 | (cp >> 6));
        p[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xE0 | (cp >> 12));
        p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        p[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    p[0] = (char)(0xF0 | (cp >> 18));
    p[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    p[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* What FriBidi's ligature shaping leaves in place of the second letter of
 * LAM-ALEF: left out of the output, as terminals do not all draw it as
 * nothing. */
#define LIGATURE_FILL 0xFEFFu

/* Columns a character takes: none for combining marks, invisible format
 * and control characters (ZWNJ, bidi marks) and ligature fill; at most 8
 * for a tab (to the next tab stop); one otherwise (Persian has no
 * double-width characters). */
static int columns(FriBidiCharType t, FriBidiChar c)
{
    if (c == '\t')
        return 8;
    return t == FRIBIDI_TYPE_NSM || t == FRIBIDI_TYPE_BN || c == LIGATURE_FILL ? 0 : 1;
}

/* End of the row starting at `start`: at most `width` columns, broken
 * after the last space that fits (spaces at the break stay on the row). */
static long row_end(const FriBidiCharType *types, const FriBidiChar *str, long start, long n,
                    int width)
{
    long i = start, cols = 0, last_space = -1;
    while (i < n) {
        int w = columns(types[i], str[i]);
        if (cols + w > width && types[i] != FRIBIDI_TYPE_WS)
            break;
        cols += w;
        if (types[i] == FRIBIDI_TYPE_WS)
            last_space = i + 1;
        i++;
    }
    if (i == n)
        return n;
    if (last_space > start)
        i = last_space;
    while (i < n && types[i] == FRIBIDI_TYPE_WS)
        i++; /* spaces never start a row */
    return i > start ? i : start + 1;
}

int cli_bidi_available(void)
{
    return 1;
}

int cli_bidi_visual(const char *s, size_t n, int width, char **out, size_t *out_len)
{
    const FriBidiFlags flags = FRIBIDI_FLAGS_DEFAULT | FRIBIDI_FLAGS_ARABIC;
    size_t cap = n ? n : 1;
    FriBidiChar *str = malloc(cap * sizeof *str);
    FriBidiCharType *types = malloc(cap * sizeof *types);
    FriBidiBracketType *brackets = malloc(cap * sizeof *brackets);
    FriBidiLevel *levels = malloc(cap * sizeof *levels);
    FriBidiArabicProp *joining = malloc(cap * sizeof *joining);
    char *text = malloc(4 * cap + (size_t)(cap + 1) + 1); /* characters + row breaks + NUL */
    int rc = -1;
    long len = str ? utf8_decode((const unsigned char *)s, n, str) : -1;
    if (!types || !brackets || !levels || !joining || !text || len < 0)
        goto done;
    size_t used = 0;
    if (len > 0) {
        FriBidiParType dir = FRIBIDI_PAR_ON; /* from the first strong character */
        fribidi_get_bidi_types(str, len, types);
        fribidi_get_bracket_types(str, len, types, brackets);
        if (!fribidi_get_par_embedding_levels_ex(types, brackets, len, &dir, levels))
            goto done;
        /* joining and shaping in logical order, over the whole paragraph */
        fribidi_get_joining_types(str, len, joining);
        fribidi_join_arabic(types, len, levels, joining);
        fribidi_shape(flags, levels, len, joining, str);
        for (long start = 0; start < len;) {
            long end = width > 0 ? row_end(types, str, start, len, width) : len;
            if (!fribidi_reorder_line(flags, types, end - start, start, dir, levels, str, NULL))
                goto done;
            for (long i = start; i < end; i++)
                if (str[i] != LIGATURE_FILL)
                    used += utf8_encode(str[i], text + used);
            if (end < len)
                text[used++] = '\n';
            start = end;
        }
    }
    text[used] = '\0';
    *out = text;
    *out_len = used;
    text = NULL;
    rc = 0;
done:
    free(str);
    free(types);
    free(brackets);
    free(levels);
    free(joining);
    free(text);
    return rc;
}

#else /* no FriBidi in this build */

int cli_bidi_available(void)
{
    return 0;
}

int cli_bidi_visual(const char *s, size_t n, int width, char **out, size_t *out_len)
{
    (void)s, (void)n, (void)width, (void)out, (void)out_len;
    return -1;
}

#endif
