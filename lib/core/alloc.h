/* alloc.h — every heap allocation of libgemfa goes through these, so that a
 * test can make the N-th allocation fail (gf_alloc_fail_after) and check the
 * error path.  Large weight buffers use gf_alloc_aligned. */
#ifndef GF_ALLOC_H
#define GF_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *gf_malloc(size_t size);
void *gf_calloc(size_t count, size_t size);
void *gf_realloc(void *ptr, size_t size);
/* 64-byte aligned; free with gf_free_aligned. */
void *gf_alloc_aligned(size_t size);
void gf_free(void *ptr);
void gf_free_aligned(void *ptr);
char *gf_strndup(const char *s, size_t n);
/* "dir/name" in a new string (gf_free), or NULL when out of memory. */
char *gf_path_join(const char *dir, const char *name);

/* n * size, or SIZE_MAX on overflow (which then fails to allocate). */
size_t gf_mul_size(size_t n, size_t size);

/* Test hook: after `n` more successful allocations, every allocation fails
 * (n < 0 disables).  Returns the number of allocations made since the last
 * call, so a test can count a call's allocation sites. */
long gf_alloc_fail_after(long n);

#endif
