/* srv_buf.h — a growable byte buffer and JSON writing into it (the server
 * builds every response in memory before handing it to the HTTP layer). */
#ifndef GEMFA_SRV_BUF_H
#define GEMFA_SRV_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_buf {
    char *data; /* NUL-terminated when not NULL */
    size_t len, cap;
    int oom;    /* an append failed: the content is incomplete */
} srv_buf;

void srv_buf_free(srv_buf *b);
void srv_buf_put(srv_buf *b, const char *s, size_t n);
void srv_buf_puts(srv_buf *b, const char *s);
void srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a JSON string literal; invalid UTF-8 bytes become U+FFFD. */
void srv_buf_json_str(srv_buf *b, const char *s, size_t n);
/* Empties the buffer (keeps the memory). */
void srv_buf_clear(srv_buf *b);

/* 1 when s[0..n) is valid UTF-8. */
int srv_utf8_valid(const char *s, size_t n);

#endif
