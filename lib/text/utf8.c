/* utf8.c — UTF-8 validation, decoding and Python whitespace (utf8.h). */
#include "text/utf8.h"

#include <utf8proc.h>

int gf_utf8_valid(const char *s, size_t len, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* ASCII runs are the common case: skip them 8 bytes at a time */
        while (i + 8 <= len) {
            uint64_t w;
            __builtin_memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) {
            *bad = i;
            return 0;
        }
        i += (size_t)n;
    }
    return 1;
}

uint32_t gf_utf8_decode(const unsigned char *s, size_t len)
{
    utf8proc_int32_t cp = 0;
    utf8proc_iterate(s, (utf8proc_ssize_t)len, &cp);
    return (uint32_t)cp;
}

size_t gf_utf8_encode(uint32_t cp, char *out)
{
    return (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out);
}

int gf_py_isspace(uint32_t cp)
{
    /* Python: bidirectional class WS, B or S, or category Zs. */
    if (cp <= 0x20)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

void gf_py_strip(const char *s, size_t len, size_t *start, size_t *end)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t a = 0, b = len;
    while (a < b) {
        size_t n = gf_utf8_seq_len(p[a]);
        if (!gf_py_isspace(gf_utf8_decode(p + a, b - a)))
            break;
        a += n;
    }
    while (b > a) {
        size_t k = b - 1;
        while (k > a && (p[k] & 0xC0) == 0x80)
            k--;
        if (!gf_py_isspace(gf_utf8_decode(p + k, b - k)))
            break;
        b = k;
    }
    *start = a;
    *end = b;
}
