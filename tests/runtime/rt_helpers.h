/* rt_helpers.h — shared helpers of the runtime tests: loading test models,
 * reading golden files, comparing logits. */
#ifndef RT_HELPERS_H
#define RT_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"

/* Tolerances of golden.json for float32 engines against the float64
 * reference: logits max |diff| (numpy in float32 measured 2.6e-3), argmax
 * equal where the golden top-2 margin exceeds RT_MARGIN, and intermediate
 * tensors max|a − b| / max(1, max|b|) (measured 2e-5). */
#define RT_LOGITS_TOL 1e-2
#define RT_MARGIN 0.05
#define RT_STREAM_TOL 2e-4

/* $GEMFA_TEST_DATA/<rel> in a static buffer. */
const char *rt_data_path(const char *rel);

/* Loads tests/data/<dir> with the given weights; aborts the test on failure. */
gemfa_model *rt_load(const char *dir, gemfa_weight_type weights);

/* Context and session with defaults (max_context 0 = the model's). */
gemfa_context *rt_context(const gemfa_model *m);
gemfa_session *rt_session(gemfa_context *ctx, int64_t max_context);

/* Whole file (malloc'd); aborts the test when missing. */
void *rt_read(const char *path, size_t *len);
/* <dir>/golden/<name> as floats / int32s; *n = element count. */
float *rt_golden_f32(const char *dir, const char *name, size_t *n);
int32_t *rt_golden_i32(const char *dir, const char *name, size_t *n);

/* Compares [rows][V] logits with the golden ones: max |diff| <= tol and the
 * argmax equal wherever the golden top-2 margin exceeds margin.  Reports
 * through cr_expect naming `what` and the row; returns the max |diff|. */
double rt_check_logits(const char *what, const float *got, const float *want, size_t rows,
                       size_t V, double tol, double margin);

/* max |a − b| over n floats. */
double rt_max_abs_diff(const float *a, const float *b, size_t n);



/* Runs gemfa_decode_all on ids[0..n) and returns the malloc'd [n][V] logits
 * (asserts success). */
float *rt_decode_all(gemfa_session *s, const int32_t *ids, size_t n, size_t V);

/* Decodes the golden sequence <seq> of <golden_dir>/golden in one batch on
 * `m` with a dump hook and compares every dumped intermediate (inputs,
 * per-layer inputs, streams, and per layer: predictions, laurel_out,
 * attn_out, attn_laurel, ffn_out, ple_injection, streams_out; final hidden,
 * raw logits) with the golden files; failures name the layer and step. */
void rt_check_dumps(gemfa_model *m, const char *golden_dir, const char *seq);
#endif
