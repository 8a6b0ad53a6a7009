/* fixture.h — helpers for the loader tests: temp directories, copies of
 * the tiny checkpoint with edited files, an independent safetensors reader
 * and writer (it shares no code with lib/loader/safetensors.c), and small
 * JSON text edits. */
#ifndef TL_FIXTURE_H
#define TL_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* $GEMFA_TEST_DATA/tiny-gemma3n (static string). */
const char *tl_tiny_dir(void);
/* A fresh directory under $TMPDIR (malloc'd); remove with tl_rmtree. */
char *tl_tmpdir(void);
/* Removes dir and its files (one level: our temp dirs are flat), frees it. */
void tl_rmtree(char *dir);
/* dir/name (malloc'd). */
char *tl_path(const char *dir, const char *name);

/* Whole-file read (malloc'd, NUL-terminated) / write; abort the test on error. */
char *tl_read(const char *path, size_t *len);
void tl_write(const char *dir, const char *name, const void *data, size_t len);
void tl_write_str(const char *dir, const char *name, const char *text);

/* Symlinks every file of the tiny checkpoint into dir, except the names in
 * the NULL-terminated list `except` (which the test writes itself). */
void tl_link_tiny(const char *dir, const char *const *except);

/* One tensor as the tests see it. */
typedef struct tl_tensor {
    char name[256];
    char dtype[16];
    int n_dims;
    int64_t shape[8];
    uint8_t *data;
    size_t nbytes;
} tl_tensor;

/* Every tensor of a safetensors file (read with plain stdio and the core
 * JSON parser).  Free with tl_free_tensors. */
tl_tensor *tl_read_tensors(const char *path, size_t *n);
void tl_free_tensors(tl_tensor *t, size_t n);
const tl_tensor *tl_find(const tl_tensor *t, size_t n, const char *name);
/* Writes a safetensors file; `pad` extra bytes of a U8 tensor "pad" come
 * first so that later data can be misaligned. */
void tl_write_safetensors(const char *path, const tl_tensor *t, size_t n, size_t pad);
/* Element i of a tensor widened to float (F32, F16, BF16). */
float tl_value(const tl_tensor *t, size_t i);

/* Rewrites a safetensors file: the header text with the first occurrence
 * of `from` replaced by `to` (the length field is recomputed, the data
 * copied unchanged). */
void tl_rewrite_header(const char *src, const char *dst, const char *from, const char *to);
/* Writes a file made of an 8-byte length, the header text and `data_len`
 * zero bytes; `len_override` replaces the length field when nonzero. */
void tl_write_raw_safetensors(const char *path, const char *header, size_t data_len,
                              uint64_t len_override);

/* JSON text edits on a malloc'd document, returning a new malloc'd one (the
 * input is freed).  `path` is "key" or "obj.key" (members of the root or of
 * a nested object).  tl_json_set replaces the value (or adds the member
 * when absent) with `value` (JSON text); tl_json_del removes the member. */
char *tl_json_set(char *doc, const char *path, const char *value);
char *tl_json_del(char *doc, const char *path);
/* The JSON text of the value at `path` (malloc'd). */
char *tl_json_get(const char *doc, const char *path);

/* First occurrence of `from` replaced by `to` (malloc'd; the input is freed). */
char *tl_replace(char *s, const char *from, const char *to);

#endif
