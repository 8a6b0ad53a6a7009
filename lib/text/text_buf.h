/* text_buf.h — growable byte and id buffers for the text code.  Every
 * append returns 0 on success and -1 when memory runs out (the buffer then
 * keeps its old contents). */
#ifndef GF_TEXT_BUF_H
#define GF_TEXT_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct gf_bytes {
    char *data;
    size_t len, cap;
} gf_bytes;

int gf_bytes_reserve(gf_bytes *b, size_t extra);
int gf_bytes_append(gf_bytes *b, const void *p, size_t n);
int gf_bytes_push(gf_bytes *b, char c);
void gf_bytes_free(gf_bytes *b);

typedef struct gf_ids {
    int32_t *data;
    size_t len, cap;
} gf_ids;

int gf_ids_reserve(gf_ids *v, size_t extra);
int gf_ids_push(gf_ids *v, int32_t id);
int gf_ids_append(gf_ids *v, const int32_t *ids, size_t n);
void gf_ids_free(gf_ids *v);

#endif
