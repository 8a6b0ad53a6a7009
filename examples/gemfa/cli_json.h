/* cli_json.h — writing JSON from the CLI (strings escaped so that any
 * bytes, U+0000 included, round-trip). */
#ifndef GEMFA_CLI_JSON_H
#define GEMFA_CLI_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes s[0..len) as a JSON string literal.  Valid UTF-8 is written as is
 * (control characters and U+0000 escaped); invalid bytes become U+FFFD. */
void cli_json_string(FILE *f, const char *s, size_t len);
void cli_json_ids(FILE *f, const int32_t *ids, size_t n);

/* 1 when s[0..len) is valid UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF). */
int cli_utf8_valid(const char *s, size_t len);

#endif
