/* cli_out.h — where `generate` and `chat` stream generated text: straight
 * to a FILE, or (--bidi) one finished line at a time in visual order
 * (cli_bidi.h), since a line can only be reordered once it is complete. */
#ifndef GEMFA_CLI_OUT_H
#define GEMFA_CLI_OUT_H

#include <stddef.h>
#include <stdio.h>

typedef struct cli_out {
    FILE *f;
    int bidi;         /* buffer lines and write them reordered */
    int width;        /* bidi: terminal columns to break rows at; 0 = no breaking */
    char *line;       /* bidi: the unfinished line */
    size_t len, cap;
    int at_line_start; /* nothing written since the last '\n' (or at all) */
} cli_out;

/* bidi = 1 needs a build with FriBidi (cli_bidi_available()). */
void cli_out_init(cli_out *o, FILE *f, int bidi);
/* Writes (or, in bidi mode, buffers up to the next '\n') s[0..n); returns
 * 0, or -1 when out of memory or the write failed. */
int cli_out_write(cli_out *o, const char *s, size_t n);
/* Ends the text: writes a buffered unfinished line (bidi); no newline added. */
int cli_out_finish(cli_out *o);
void cli_out_free(cli_out *o);

#endif
