/* quantize.h — writing a pre-quantized checkpoint (gemfa quantize): the
 * matrices --weights int8 would quantize at load, stored quantized, so that
 * the loader maps them instead of converting them.
 *
 * Format: a Hugging Face directory whose model.safetensors holds, for each
 * quantized matrix `W` ([rows][cols], cols % 32 == 0), a tensor `W` of
 * dtype I8 and shape [rows][cols] and a tensor `W_scale` of dtype F16 and
 * shape [rows][cols/32], both with their bytes in the interleaved Q8 layout
 * (kernels/q8_format.h): w = q · scale per block of 32 along a row,
 * symmetric (scale = max|w| / 127, q = round(w / scale) — the quantizer of
 * kernels/q8_format.c, so the weights are bit for bit those of an int8
 * load).  The header's __metadata__ names the scheme under
 * "gemfa.quantization" (GF_Q8_SCHEME).  Every other decoder tensor (norms,
 * the per-layer embedding table, AltUp coefficients) is copied as stored;
 * the vision and audio towers are left out; config, tokenizer and other
 * small files are copied. */
#ifndef GF_LOADER_QUANTIZE_H
#define GF_LOADER_QUANTIZE_H

#include <stdint.h>

#include "gemfa.h"
#include "kernels/q8_format.h"

/* The scheme names (GF_Q8_SCHEME...) are in kernels/q8_format.h. */
#define GF_Q8_SCALE_SUFFIX "_scale"

typedef struct gf_quantize_stats {
    int64_t n_quantized, n_copied; /* tensors */
    int64_t bytes_written;         /* model.safetensors */
} gf_quantize_stats;

/* Reads the checkpoint in src_dir and writes the quantized one into dst_dir
 * (created if missing; files of the same names are replaced, the weights
 * through a temporary file renamed at the end).  n_threads <= 0: all cores.
 * `progress` (may be NULL) gets fractions in [0, 1]; returning nonzero
 * cancels.  Errors: INVALID_ARGUMENT (NULL, dst_dir is src_dir, dst_dir
 * holds a model.safetensors.index.json), IO, FORMAT, TENSOR_MISSING (no
 * embed_tokens), UNSUPPORTED (the source is already quantized),
 * OUT_OF_MEMORY, CANCELLED.  On error the destination's weights file is
 * not created (or left as it was). */
gemfa_status gf_quantize_checkpoint(const char *src_dir, const char *dst_dir, int n_threads,
                                    gemfa_progress_fn progress, void *user,
                                    gf_quantize_stats *stats);

#endif
