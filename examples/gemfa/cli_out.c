/* cli_out.c — the generated-text sink of `generate` and `chat`. */
#include "cli_out.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli_bidi.h"

/* Columns of the terminal `f` writes to; 0 when it is not one. */
static int terminal_width(FILE *f)
{
    struct winsize ws;
    int fd = fileno(f);
    if (fd < 0 || !isatty(fd) || ioctl(fd, TIOCGWINSZ, &ws) != 0)
        return 0;
    return ws.ws_col;
}

void cli_out_init(cli_out *o, FILE *f, int bidi)
{
    memset(o, 0, sizeof *o);
    o->f = f;
    o->bidi = bidi;
    o->width = bidi ? terminal_width(f) : 0;
    o->at_line_start = 1;
}

static int put(cli_out *o, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (fwrite(s, 1, n, o->f) != n)
        return -1;
    o->at_line_start = s[n - 1] == '\n';
    return 0;
}

/* Writes the buffered line in visual order. */
static int put_line(cli_out *o)
{
    char *vis;
    size_t len;
    if (o->len == 0)
        return 0;
    if (cli_bidi_visual(o->line, o->len, o->width, &vis, &len) != 0)
        return -1;
    int rc = put(o, vis, len);
    free(vis);
    o->len = 0;
    return rc;
}

int cli_out_write(cli_out *o, const char *s, size_t n)
{
    if (!o->bidi) {
        if (put(o, s, n) != 0)
            return -1;
        return fflush(o->f) == 0 ? 0 : -1;
    }
    while (n > 0) {
        const char *nl = memchr(s, '\n', n);
        size_t take = nl ? (size_t)(nl - s) : n;
        if (o->len + take > o->cap) {
            size_t cap = o->cap ? o->cap : 256;
            while (cap < o->len + take)
                cap *= 2;
            char *p = realloc(o->line, cap);
            if (!p)
                return -1;
            o->line = p;
            o->cap = cap;
        }
        memcpy(o->line + o->len, s, take);
        o->len += take;
        if (!nl)
            break;
        if (put_line(o) != 0 || put(o, "\n", 1) != 0 || fflush(o->f) != 0)
            return -1;
        s += take + 1;
        n -= take + 1;
    }
    return 0;
}

int cli_out_finish(cli_out *o)
{
    if (o->bidi && put_line(o) != 0)
        return -1;
    return fflush(o->f) == 0 ? 0 : -1;
}

void cli_out_free(cli_out *o)
{
    free(o->line);
    o->line = NULL;
    o->len = o->cap = 0;
}
