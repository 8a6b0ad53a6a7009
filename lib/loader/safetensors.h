/* safetensors.h — memory-mapped safetensors files and the set of shards of
 * one checkpoint directory.
 *
 * A file is mapped read-only once; its header is validated before anything
 * else looks at it: 8-byte length within bounds, strict JSON, known dtype
 * names, shape × element size == byte range (checked multiplication), byte
 * ranges inside the data section and not overlapping, no repeated names.
 * Tensor data is then only touched by whoever reads a tensor, so tensors
 * nobody asks for (vision/audio towers) are never paged in. */
#ifndef GF_SAFETENSORS_H
#define GF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"

/* Every dtype name of the safetensors format with a whole-byte element. */
typedef enum gf_st_dtype {
    GF_ST_BOOL,
    GF_ST_U8,
    GF_ST_I8,
    GF_ST_F8_E4M3,
    GF_ST_F8_E5M2,
    GF_ST_F8_E8M0,
    GF_ST_I16,
    GF_ST_U16,
    GF_ST_F16,
    GF_ST_BF16,
    GF_ST_I32,
    GF_ST_U32,
    GF_ST_F32,
    GF_ST_I64,
    GF_ST_U64,
    GF_ST_F64,
    GF_ST_N_DTYPES
} gf_st_dtype;

const char *gf_st_dtype_name(gf_st_dtype dtype);
size_t gf_st_dtype_size(gf_st_dtype dtype);

#define GF_ST_MAX_DIMS 8
/* The reference implementation refuses headers above 100 MB too. */
#define GF_ST_MAX_HEADER ((uint64_t)100000000)

struct gf_st_file;

typedef struct gf_st_tensor {
    char *name;
    gf_st_dtype dtype;
    int n_dims;
    int64_t shape[GF_ST_MAX_DIMS];
    uint64_t n_elements;
    uint64_t begin, end;  /* data_offsets, relative to the data section */
    const void *data;     /* inside the mapping */
    const struct gf_st_file *file;
} gf_st_tensor;

typedef struct gf_st_file {
    char *path;            /* as opened; messages use it */
    void *map;
    size_t size;
    const uint8_t *data;   /* first byte after the header */
    uint64_t data_size;
    gf_st_tensor *tensors; /* in header order */
    size_t n_tensors;
    char *quantization;    /* __metadata__ "gemfa.quantization" (a string), else NULL */
} gf_st_file;

/* Validates a complete file image buf[0..size) and fills f->tensors (their
 * data pointers point into buf, which must outlive f).  `what` names the
 * file in messages.  Does not set f->path/map.
 * Errors: FORMAT, OUT_OF_MEMORY. */
gemfa_status gf_st_parse(const uint8_t *buf, size_t size, const char *what, gf_st_file *f);

/* Maps `path` and validates it.  Errors: IO, FORMAT, OUT_OF_MEMORY; on
 * error *f is left zeroed. */
gemfa_status gf_st_file_open(const char *path, gf_st_file *f);
/* Releases what gf_st_parse or gf_st_file_open filled; safe on a zeroed f. */
void gf_st_file_close(gf_st_file *f);

/* The tensors of a checkpoint directory: the shards named by
 * model.safetensors.index.json, or a single model.safetensors. */
typedef struct gf_shard_set {
    gf_st_file *files;
    size_t n_files;
    const gf_st_tensor **sorted; /* all tensors, by name */
    size_t n_tensors;
    char *index_path;            /* NULL for a single file */
} gf_shard_set;

/* Opens the shards of `dir`.  Errors: IO (no weights file, a shard that
 * cannot be opened — the message names the index and the shard), FORMAT
 * (bad index or header, a tensor the index places in a shard that lacks it,
 * a tensor in two shards), OUT_OF_MEMORY. */
gemfa_status gf_shard_set_open(const char *dir, gf_shard_set **out);
void gf_shard_set_free(gf_shard_set *set);

/* The tensor called `name`, or NULL. */
const gf_st_tensor *gf_shard_set_find(const gf_shard_set *set, const char *name);

/* Total size of the mapped files in bytes. */
uint64_t gf_shard_set_bytes(const gf_shard_set *set);

/* Memory hints for a tensor's bytes in the mapping (errors are ignored:
 * hints only).  _random: rows will be gathered one at a time (no
 * read-ahead).  _done: the bytes were copied out; drop them from the
 * process's resident set (the page cache keeps them; a later read simply
 * faults them back in). */
void gf_st_advise_random(const gf_st_tensor *t);
/* A tensor read whole on every token (a matrix used in place): asks the
 * kernel for huge pages (MADV_HUGEPAGE), so that its page cache folios are
 * mapped with few TLB entries.  Measured: E4B BF16 decode from 5.2 to 7.0
 * tok/s after a cold start (docs/performance.md).  Never on the per-layer
 * table, whose rows are gathered: a fault there would read 2 MB. */
void gf_st_advise_stream(const gf_st_tensor *t);
void gf_st_advise_done(const gf_st_tensor *t);

/* "<path> (tensor '<name>')" style helper: the base name of the tensor's
 * file, for messages. */
const char *gf_st_file_name(const gf_st_file *f);

#endif
