/* cli_bidi.h — `--bidi`: logical-order UTF-8 lines to the visual order a
 * terminal without bidirectional support must be given (Unicode
 * bidirectional algorithm, mirrored brackets, Arabic-script joining forms),
 * with GNU FriBidi.  Builds without FriBidi compile a stub that says so. */
#ifndef GEMFA_CLI_BIDI_H
#define GEMFA_CLI_BIDI_H

#include <stddef.h>

/* 1 when this build has FriBidi. */
int cli_bidi_available(void);

/* The visual form of one logical line s[0..n) (no '\n' inside), as UTF-8
 * in *out (malloc'd, NUL-terminated; *out_len without the NUL).  The
 * paragraph direction comes from the first strong character (a Persian line
 * is right to left).  width > 0 breaks the line into rows of at most that
 * many characters first (at spaces where possible), each row reordered on
 * its own and ended by '\n' except the last, so a terminal does not wrap a
 * reordered line from its visual left.  Returns 0, or -1 when out of
 * memory, the text is not valid UTF-8 or the build lacks FriBidi. */
int cli_bidi_visual(const char *s, size_t n, int width, char **out, size_t *out_len);

#endif
