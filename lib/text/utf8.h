/* utf8.h — UTF-8 helpers for the text code: validation (through utf8proc),
 * decoding one code point of text already validated, encoding, and
 * Python's str.strip() whitespace as the chat template's `trim` uses it. */
#ifndef GF_TEXT_UTF8_H
#define GF_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 when s[0..len) is valid UTF-8 (no overlongs, surrogates or values
 * above U+10FFFF); else 0 with *bad = byte offset of the first bad sequence. */
int gf_utf8_valid(const char *s, size_t len, size_t *bad);

/* Byte length of the sequence starting with lead byte `c` of VALID text. */
static inline size_t gf_utf8_seq_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Decodes the code point at s (valid UTF-8, len bytes of it available). */
uint32_t gf_utf8_decode(const unsigned char *s, size_t len);

/* Writes cp as UTF-8 into out (4 bytes of room); returns the byte count. */
size_t gf_utf8_encode(uint32_t cp, char *out);

/* Python's str.isspace() for one code point. */
int gf_py_isspace(uint32_t cp);

/* Python's str.strip() on valid UTF-8: [*start, *end) is what remains. */
void gf_py_strip(const char *s, size_t len, size_t *start, size_t *end);

/* The UTF-8 of U+FFFD. */
#define GF_UTF8_REPLACEMENT "\xEF\xBF\xBD"

#endif
