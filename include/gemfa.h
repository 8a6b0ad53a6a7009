/*
 * gemfa.h — the public C API of libgemfa, a CPU inference library for
 * Google's Gemma 3n language models (text decoder).
 *
 * Conventions that hold for every function below unless its comment says
 * otherwise:
 *
 *  - Status.  Fallible calls return a gemfa_status; GEMFA_OK (0) is success.
 *    On failure, gemfa_last_error() (thread-local) holds a message saying
 *    precisely what went wrong (file, tensor, offset, expected vs found), and
 *    every out-parameter is left untouched unless documented.
 *  - Failure atomicity.  A failed call leaves its handle exactly as it was
 *    before the call (a decode that hits a full context does not advance the
 *    session; a load that fails frees everything it allocated).
 *  - Ownership.  The caller owns what it passes in and keeps ownership.
 *    Handles returned through `**out` are owned by the caller and released
 *    with the matching *_free function; every *_free accepts NULL.
 *    Output buffers are caller-provided with a size-query protocol: when a
 *    buffer is too small the call returns GEMFA_ERR_BUFFER_TOO_SMALL and
 *    stores the needed size in the length out-parameter (call with cap 0 and
 *    a NULL buffer to query).
 *  - Strings.  Text is UTF-8.  A text argument comes with an explicit byte
 *    length; pass GEMFA_NUL_TERMINATED to use strlen().  Text may contain
 *    U+0000 when its length is given explicitly.
 *  - Threads.  A gemfa_model is immutable after loading and may be used from
 *    any number of threads at once.  A gemfa_context, its sessions, a sampler
 *    and a detokenizer stream are used by one thread at a time (different
 *    handles may be used concurrently from different threads).
 *  - Handles.  Passing NULL where a handle is required returns
 *    GEMFA_ERR_INVALID_ARGUMENT; passing a freed handle is undefined.
 */
#ifndef GEMFA_H
#define GEMFA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GEMFA_BUILDING_LIBRARY) && defined(__GNUC__)
#define GEMFA_API __attribute__((visibility("default")))
#else
#define GEMFA_API
#endif

/* ---------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------- */

#define GEMFA_VERSION_MAJOR 0
#define GEMFA_VERSION_MINOR 1
#define GEMFA_VERSION_PATCH 0
#define GEMFA_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for compile-time comparisons. */
#define GEMFA_VERSION_NUMBER \
    (GEMFA_VERSION_MAJOR * 10000 + GEMFA_VERSION_MINOR * 100 + GEMFA_VERSION_PATCH)

/* Version of the library actually linked (compare with GEMFA_VERSION_NUMBER).
 * Thread-safe; never fails. */
GEMFA_API unsigned gemfa_version_number(void);
/* Static string such as "0.1.0"; never NULL, never to be freed. */
GEMFA_API const char *gemfa_version_string(void);

/* Pass as a length to mean "the string is NUL-terminated". */
#define GEMFA_NUL_TERMINATED ((size_t)-1)

/* ---------------------------------------------------------------------------
 * Status codes and errors
 * Numeric values are part of the ABI and never change; new codes are only
 * appended, so treat a value you do not know as a generic failure.
 *
 * Missing files: the library reports them with a status, not through errno
 * (errno is not part of the API: libgemfa makes many system calls and may
 * change them).  GEMFA_ERR_NOT_FOUND means a path the call needs does not
 * exist (the OS said ENOENT or ENOTDIR, or the model path is not a
 * directory); every other failure to open, read or map a file (permission
 * denied, a directory or FIFO where a file should be, a name too long, a
 * read error) is GEMFA_ERR_IO.  Compatibility: GEMFA_ERR_NOT_FOUND was appended after
 * libgemfa 0.1.0, which returned GEMFA_ERR_IO for a missing model directory
 * or file; a caller that must work with both should treat IO and NOT_FOUND
 * alike where it only needs "could not read the checkpoint".
 * ------------------------------------------------------------------------- */

typedef enum gemfa_status {
    GEMFA_OK = 0,
    GEMFA_ERR_INVALID_ARGUMENT = 1, /* NULL handle/pointer, bad value or option */
    GEMFA_ERR_OUT_OF_MEMORY = 2,    /* an allocation failed */
    GEMFA_ERR_IO = 3,               /* an existing file could not be opened, read or mapped */
    GEMFA_ERR_FORMAT = 4,           /* a file is malformed: JSON, safetensors header, ranges */
    GEMFA_ERR_CONFIG = 5,           /* config.json values missing, out of range or inconsistent */
    GEMFA_ERR_TENSOR_MISSING = 6,   /* a tensor the config implies is not in the checkpoint */
    GEMFA_ERR_TENSOR_SHAPE = 7,     /* a tensor has the wrong shape or an unusable dtype */
    GEMFA_ERR_UNSUPPORTED = 8,      /* a valid input that libgemfa does not implement */
    GEMFA_ERR_NO_TOKENIZER = 9,     /* the model was loaded without a tokenizer */
    GEMFA_ERR_NO_WEIGHTS = 10,      /* the model was loaded vocabulary-only */
    GEMFA_ERR_INVALID_UTF8 = 11,    /* text is not valid UTF-8 */
    GEMFA_ERR_INVALID_TOKEN = 12,   /* a token id outside the vocabulary or not accepted here */
    GEMFA_ERR_TEMPLATE = 13,        /* chat messages the template rejects (role order, ...) */
    GEMFA_ERR_BUFFER_TOO_SMALL = 14,/* output buffer too small; needed size reported */
    GEMFA_ERR_CONTEXT_FULL = 15,    /* the decode would pass the session's context limit */
    GEMFA_ERR_CANCELLED = 16,       /* a callback asked to stop */
    GEMFA_ERR_INTERNAL = 17,        /* a bug in libgemfa; please report it */
    GEMFA_ERR_NOT_FOUND = 18,       /* a path does not exist (ENOENT/ENOTDIR); was IO in 0.1.0 */
    GEMFA_ERR_MODEL_MISMATCH = 19   /* saved data belongs to another model or configuration */
} gemfa_status;

/* Stable name of a status, e.g. "GEMFA_ERR_IO"; "GEMFA_ERR_UNKNOWN" for a
 * value outside the enum.  Static string; thread-safe. */
GEMFA_API const char *gemfa_status_name(gemfa_status status);

/* Message describing the most recent failed call made by the calling thread
 * (thread-local).  Empty string ("") if none failed yet.  The pointer stays
 * valid until the next libgemfa call on this thread; copy it to keep it. */
GEMFA_API const char *gemfa_last_error(void);

typedef enum gemfa_log_level {
    GEMFA_LOG_ERROR = 0,
    GEMFA_LOG_WARN = 1,
    GEMFA_LOG_INFO = 2,
    GEMFA_LOG_DEBUG = 3
} gemfa_log_level;

/* Receives log lines (no trailing newline).  `msg` is valid only during the
 * call.  May be called from any thread that is inside a libgemfa call, so the
 * function must be thread-safe. */
typedef void (*gemfa_log_fn)(void *user, gemfa_log_level level, const char *msg);

/* Installs a process-wide log callback receiving messages at `max_level` and
 * more severe (NULL fn: silence).  By default warnings and errors go to
 * stderr.  Thread-safe, but calls already running may still use the old
 * callback. */
GEMFA_API void gemfa_set_log_callback(gemfa_log_fn fn, void *user, gemfa_log_level max_level);

/* ---------------------------------------------------------------------------
 * Model loading
 * ------------------------------------------------------------------------- */

typedef struct gemfa_model gemfa_model;
typedef struct gemfa_model_options gemfa_model_options;

/* How the big matrices are kept in memory. */
typedef enum gemfa_weight_type {
    GEMFA_WEIGHTS_AUTO = 0, /* as stored (BF16/F16 mapped in place, F32 as is) */
    GEMFA_WEIGHTS_F32 = 1,  /* converted to float32 at load (exactness tests) */
    GEMFA_WEIGHTS_F16 = 2,  /* converted to IEEE half at load (mapped if stored so) */
    GEMFA_WEIGHTS_BF16 = 3, /* converted to bfloat16 at load (mapped if stored so) */
    GEMFA_WEIGHTS_INT8 = 4, /* symmetric int8, blocks of 32 inputs, one f16 scale each */
    /* 4-bit weights: blocks of 32 inputs, one f16 scale each
     * (4.5 bits per weight; the scale searched per block, never less
     * accurate than llama.cpp's Q4_0), for the attention, MLP and per-layer
     * projections; the tied embedding / LM head and the small AltUp and
     * LAuReL matrices stay int8 (docs/architecture.md, "Q4"). */
    GEMFA_WEIGHTS_Q4 = 5
} gemfa_weight_type;

/* Called during loading with the fraction done (0..1) and a short stage name
 * ("map", "validate", "convert", ...).  Return nonzero to abort the load
 * (gemfa_model_load then returns GEMFA_ERR_CANCELLED).  Called on the loading
 * thread. */
typedef int (*gemfa_progress_fn)(void *user, float fraction, const char *stage);

/* Creates an options object holding the defaults (weights AUTO, full load,
 * no progress callback, all cores for conversion).  Errors: INVALID_ARGUMENT
 * (out NULL), OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_model_options_new(gemfa_model_options **out);
/* Frees an options object; NULL is a no-op. */
GEMFA_API void gemfa_model_options_free(gemfa_model_options *opts);
/* Errors: INVALID_ARGUMENT (NULL opts or a value outside the enum). */
GEMFA_API gemfa_status gemfa_model_options_set_weights(gemfa_model_options *opts,
                                                       gemfa_weight_type type);
/* Nonzero: load only the tokenizer, template and generation settings; no
 * weights are read and config.json is optional.  Errors: INVALID_ARGUMENT. */
GEMFA_API gemfa_status gemfa_model_options_set_vocab_only(gemfa_model_options *opts, int on);
/* `fn` may be NULL (no progress).  `user` is passed back untouched and must
 * stay valid during gemfa_model_load.  Errors: INVALID_ARGUMENT. */
GEMFA_API gemfa_status gemfa_model_options_set_progress(gemfa_model_options *opts,
                                                        gemfa_progress_fn fn, void *user);
/* Threads used for weight conversion at load; 0 = all cores.
 * Errors: INVALID_ARGUMENT (negative). */
GEMFA_API gemfa_status gemfa_model_options_set_threads(gemfa_model_options *opts, int n_threads);

/* ---- LoRA adapters (PEFT format), merged at load (docs/lora.md) ---------
 * Adds the adapter in directory `dir` (adapter_config.json and
 * adapter_model.safetensors, as PEFT's save_pretrained writes them) to the
 * adapters gemfa_model_load applies; call it once per adapter, in the order
 * they are to be added (several may change the same matrix).  Each changed
 * matrix becomes W + scale·(lora_alpha/r)·B·A (lora_alpha/sqrt(r) with
 * use_rslora), summed in f32 before the weight type's conversion (so with
 * GEMFA_WEIGHTS_INT8 the merged matrix is quantized); only changed matrices
 * leave the mapped file.  scale 1 applies the adapter as trained; 0 loads
 * it but changes nothing; negative subtracts it.  The directory is only
 * recorded here: it is read, and every adapter checked against the model,
 * by gemfa_model_load before any weight is converted, whose errors then
 * include MODEL_MISMATCH (an adapter for another model or size),
 * TENSOR_MISSING (half of an A/B pair), CONFIG (rank < 1, a non-finite
 * scale), UNSUPPORTED (DoRA, modules_to_save, rank/alpha patterns, a
 * pre-quantized int8 checkpoint, another PEFT method), FORMAT, NOT_FOUND and
 * IO for the adapter's files.  A vocabulary-only load ignores adapters.
 * `dir` is copied.  Thread-safety: as the other option setters (one thread
 * per options object).  Errors: INVALID_ARGUMENT (NULL opts or dir, empty
 * dir, scale NaN or infinite, more than 64 adapters), OUT_OF_MEMORY; on
 * error the options are unchanged. */
GEMFA_API gemfa_status gemfa_model_options_add_lora(gemfa_model_options *opts, const char *dir,
                                                    float scale);

/* Loads a Hugging Face Gemma 3n directory (config.json, *.safetensors
 * [+ index], tokenizer.json, tokenizer_config.json / chat_template.jinja,
 * generation_config.json).  `opts` may be NULL for defaults and may be freed
 * after the call.  The tokenizer files are optional: without them the model
 * loads and only text calls fail with GEMFA_ERR_NO_TOKENIZER.
 * Ownership: *out is the caller's, freed with gemfa_model_free().  Weight
 * files stay memory-mapped until then.
 * Thread-safety: any thread; the returned model is immutable and shareable.
 * Errors (the message names the file, the tensor and expected vs found):
 *   INVALID_ARGUMENT  NULL path/out, bad options;
 *   NOT_FOUND         the directory does not exist or is not a directory,
 *                     or a file it needs does not: config.json, the weights
 *                     (model.safetensors or model.safetensors.index.json), a
 *                     shard the index names, tokenizer.json for a
 *                     vocabulary-only load without config.json; the message
 *                     names the missing path (0.1.0 returned IO here);
 *   IO                any other failure to open, read or map one of those
 *                     (permissions, not a regular file, name too long, read
 *                     error);
 *   FORMAT            malformed JSON, index or safetensors header: header
 *                     length beyond the file, unknown dtype, shape that does
 *                     not match its byte range, data past the end of the file
 *                     (truncated), overlapping tensors, empty files;
 *   CONFIG            config.json values missing, out of range or
 *                     inconsistent (with each other or with the tensors'
 *                     layer count);
 *   TENSOR_MISSING    a tensor the config implies is absent;
 *   TENSOR_SHAPE      a tensor with the wrong shape or an unusable dtype;
 *   UNSUPPORTED       a model type, activation or RoPE scaling libgemfa does
 *                     not implement;
 *   OUT_OF_MEMORY, CANCELLED (the progress callback returned nonzero).
 * On failure *out is untouched and nothing leaks. */
GEMFA_API gemfa_status gemfa_model_load(const char *path, const gemfa_model_options *opts,
                                        gemfa_model **out);

/* Frees a model; NULL is a no-op.  Every context, session and detokenizer
 * stream made from it must be freed first.  Samplers are independent: a
 * sampler copies its defaults at gemfa_sampler_new and may outlive the
 * model. */
GEMFA_API void gemfa_model_free(gemfa_model *model);

/* Integer facts about a loaded model, read with gemfa_model_get(). */
typedef enum gemfa_model_prop {
    GEMFA_PROP_VOCAB_SIZE = 1,          /* logits per position (E4B: 262400) */
    GEMFA_PROP_TOKENIZER_SIZE = 2,      /* ids the tokenizer has pieces for (262145) */
    GEMFA_PROP_CONTEXT_LENGTH = 3,      /* max_position_embeddings */
    GEMFA_PROP_N_LAYERS = 4,
    GEMFA_PROP_HIDDEN_SIZE = 5,
    GEMFA_PROP_N_HEADS = 6,
    GEMFA_PROP_N_KV_HEADS = 7,
    GEMFA_PROP_HEAD_DIM = 8,
    GEMFA_PROP_SLIDING_WINDOW = 9,
    GEMFA_PROP_N_KV_SHARED_LAYERS = 10,
    GEMFA_PROP_PER_LAYER_INPUT_SIZE = 11,
    GEMFA_PROP_VOCAB_SIZE_PER_LAYER_INPUT = 12,
    GEMFA_PROP_BOS_ID = 13,             /* -1 when unknown */
    GEMFA_PROP_EOS_ID = 14,             /* first end-of-generation id, -1 when none */
    GEMFA_PROP_PAD_ID = 15,
    GEMFA_PROP_UNK_ID = 16,
    GEMFA_PROP_START_OF_TURN_ID = 17,
    GEMFA_PROP_END_OF_TURN_ID = 18,
    GEMFA_PROP_N_PARAMS = 19,           /* text-decoder parameters, PLE table included */
    GEMFA_PROP_N_PARAMS_PLE = 20,       /* parameters of the per-layer embedding table */
    GEMFA_PROP_WEIGHT_BYTES = 21,       /* bytes of text-decoder weights as used */
    GEMFA_PROP_WEIGHT_TYPE = 22,        /* a gemfa_weight_type, the resolved type */
    GEMFA_PROP_HAS_WEIGHTS = 23,        /* 0 for a vocabulary-only model */
    GEMFA_PROP_HAS_TOKENIZER = 24,
    GEMFA_PROP_STORED_BYTES_F32 = 25,   /* bytes of text tensors stored as F32 in the files */
    GEMFA_PROP_STORED_BYTES_F16 = 26,
    GEMFA_PROP_STORED_BYTES_BF16 = 27,
    GEMFA_PROP_STORED_BYTES_INT8 = 28,  /* pre-quantized int8 data (scales counted as F16) */
    GEMFA_PROP_STORED_BYTES_Q4 = 29,    /* pre-quantized 4-bit data (scales counted as F16) */
    /* LoRA (gemfa_model_options_add_lora) */
    GEMFA_PROP_LORA_ADAPTERS = 36,      /* adapters merged at load (0: none) */
    GEMFA_PROP_LORA_MATRICES = 37,      /* weight matrices they changed */
    /* MatFormer sub-models (values 40-44 reserved for them) */
    GEMFA_PROP_MATFORMER = 40,          /* 1 for a sub-model (matformer option or derived) */
    GEMFA_PROP_BASE_LAYERS = 41,        /* layers of the checkpoint (= N_LAYERS unless sliced) */
    GEMFA_PROP_SKIPPED_LAYERS = 42      /* checkpoint layers the sub-model skips */
} gemfa_model_prop;

/* Reads one property into *value.  Thread-safe.
 * Errors: INVALID_ARGUMENT (NULL, unknown prop). */
GEMFA_API gemfa_status gemfa_model_get(const gemfa_model *model, gemfa_model_prop prop,
                                       int64_t *value);

typedef enum gemfa_layer_type {
    GEMFA_LAYER_SLIDING = 0, /* sliding-window attention */
    GEMFA_LAYER_FULL = 1     /* global (causal) attention */
} gemfa_layer_type;

/* Facts about decoder layer `layer` (0-based).  Any out pointer may be NULL.
 * `kv_source` is the layer whose KV cache this layer reads (itself if it
 * owns one); `ffn_width` its intermediate size; `sparsity` its activation
 * sparsity target (0 = dense).  Thread-safe.
 * Errors: INVALID_ARGUMENT (NULL model, layer out of range), NO_WEIGHTS. */
GEMFA_API gemfa_status gemfa_model_layer(const gemfa_model *model, int layer,
                                         gemfa_layer_type *type, int *kv_source,
                                         int64_t *ffn_width, float *sparsity);

/* ---------------------------------------------------------------------------
 * MatFormer sub-models (docs/matformer.md)
 *
 * Gemma 3n E4B nests smaller models: each layer's FFN may keep only its
 * first W units (gate/up rows, down columns) and some layers may be
 * skipped.  SPEC is a preset name ("e2b": E4B -> E2B, FFN 8192, layers
 * 20-24 skipped; refused with MODEL_MISMATCH on another shape) or
 * "ffn=W[,W...][:skip=I[,I...]]" / "skip=I[,I...]": one width for every
 * kept layer or one per kept layer in order, and the 0-based layers to
 * skip.  A layer another kept layer reads the KV cache of cannot be
 * skipped.  With int8 weights a partial width must be a multiple of 32.
 * ------------------------------------------------------------------------- */

/* Loads only the sub-model SPEC describes (NULL or "" = the whole model).
 * The syntax is checked here, the fit to the checkpoint by
 * gemfa_model_load, which then fails with the errors of
 * gemfa_model_derive_submodel.  Errors: INVALID_ARGUMENT (NULL opts, bad
 * syntax), OUT_OF_MEMORY; on failure the option is unchanged. */
GEMFA_API gemfa_status gemfa_model_options_set_matformer(gemfa_model_options *opts,
                                                         const char *spec);

/* Makes the sub-model SPEC of `base` (a loaded or a derived model; layer
 * indices and widths refer to `base`'s layers).  No weights are copied
 * except the first W columns of each narrowed down_proj (strided in the
 * checkpoint); gate/up rows, attention, AltUp, LAuReL, the per-layer
 * embeddings and the tokenizer are shared with `base`.
 * Lifetime: *out is the caller's, freed with gemfa_model_free(); it holds a
 * reference on `base` (whose weights it borrows), so the two may be freed in
 * any order (each after its own contexts and sessions).  Contexts and sessions
 * are per model: a session of one cannot decode with the other.
 * Thread-safety: any thread, also concurrently with other calls reading
 * `base` (the reference count is atomic); both models are immutable.
 * Errors: INVALID_ARGUMENT (NULL argument, bad syntax, width 0 or above the
 * layer's, a width count that is neither 1 nor the kept layers', skip index
 * out of range or repeated, skipping a KV-source layer or every layer, an
 * int8 width not a multiple of 32), MODEL_MISMATCH (a preset for another
 * checkpoint shape), NO_WEIGHTS (vocabulary-only base), UNSUPPORTED (a
 * weight format that cannot be sliced), OUT_OF_MEMORY.  On failure *out is
 * untouched and `base` is unchanged. */
GEMFA_API gemfa_status gemfa_model_derive_submodel(const gemfa_model *base, const char *spec,
                                                   gemfa_model **out);

/* The checkpoint layer that decoder layer `layer` of `model` is (equal to
 * `layer` unless layers were skipped).  Thread-safe.
 * Errors: INVALID_ARGUMENT (NULL, layer out of range). */
GEMFA_API gemfa_status gemfa_model_base_layer(const gemfa_model *model, int layer,
                                              int *base_layer);

/* The MatFormer spec the model was sliced with, as given; NULL for a whole
 * model or a NULL model.  Owned by the model.  Thread-safe. */
GEMFA_API const char *gemfa_model_matformer(const gemfa_model *model);

/* Nonzero when `id` ends generation (eos_token_id of generation_config.json,
 * else of config.json).  Thread-safe; 0 for a NULL model or unknown id. */
GEMFA_API int gemfa_model_is_eog(const gemfa_model *model, int32_t id);

/* Copies the end-of-generation ids into ids[0..cap) and their count into
 * *n.  Errors: INVALID_ARGUMENT, BUFFER_TOO_SMALL (*n = needed count). */
GEMFA_API gemfa_status gemfa_model_eog_ids(const gemfa_model *model, int32_t *ids, size_t cap,
                                           size_t *n);

/* ---------------------------------------------------------------------------
 * Tokenizer
 * All functions need a model loaded with a tokenizer (else NO_TOKENIZER).
 * They are thread-safe (the model is read-only).
 * ------------------------------------------------------------------------- */

/* Flags for gemfa_tokenize(). */
#define GEMFA_TOKENIZE_ADD_BOS 0x1u       /* add the post-processor's special tokens, as HF's
                                             add_special_tokens (Gemma: prepend <bos>) */
#define GEMFA_TOKENIZE_PARSE_SPECIAL 0x2u /* text like "<start_of_turn>" becomes the special id;
                                             without it special-token text is plain text (HF's
                                             split_special_tokens), while non-special added
                                             tokens ("\n\n", "<div>", ...) still match */
#define GEMFA_TOKENIZE_DEFAULT (GEMFA_TOKENIZE_ADD_BOS | GEMFA_TOKENIZE_PARSE_SPECIAL)

/* Encodes `text` (len bytes, or GEMFA_NUL_TERMINATED) into ids[0..cap),
 * exactly as Hugging Face tokenizers does (no Unicode normalization: ZWNJ,
 * Arabic/Persian letter variants and bidi marks are kept as typed); *n_ids
 * receives the count.  `text` may be NULL when len is 0.  Text that itself
 * starts with "<bos>" gets a second <bos> with ADD_BOS, as in HF.
 * Errors: INVALID_ARGUMENT (NULL pointers, unknown flags), NO_TOKENIZER,
 * INVALID_UTF8 (text is not valid UTF-8 -- overlong forms, surrogates and
 * values above U+10FFFF included; the message gives the byte offset of the
 * first bad sequence; nothing is written), BUFFER_TOO_SMALL (*n_ids = needed
 * count; ids untouched), OUT_OF_MEMORY, FORMAT (a character the vocabulary
 * cannot express and no <unk>: never with Gemma's byte fallback). */
GEMFA_API gemfa_status gemfa_tokenize(const gemfa_model *model, const char *text, size_t len,
                                      unsigned flags, int32_t *ids, size_t cap, size_t *n_ids);

/* Flags for gemfa_detokenize() and the detokenizer stream. */
#define GEMFA_DETOKENIZE_SKIP_SPECIAL 0x1u /* leave out special tokens (<bos>, <end_of_turn>, ...) */

/* Decodes ids into UTF-8 text exactly as Hugging Face tokenizers does
 * ("\u2581" becomes a space; a run of byte-fallback tokens is joined when the
 * whole run is valid UTF-8, else it becomes one U+FFFD per byte of the run;
 * no space cleanup).  Ids with no piece (the model's vocabulary of 262,400
 * is larger than the tokenizer's 262,145) decode to nothing and, like
 * skipped specials, do not interrupt a byte run.  The output is always
 * valid UTF-8.  Writes the text and a terminating NUL into buf[0..cap);
 * *len receives the text length without the NUL (the buffer needs *len + 1
 * bytes).  Errors: INVALID_ARGUMENT, NO_TOKENIZER, INVALID_TOKEN (id < 0 or
 * >= max(vocabulary size, tokenizer size); the message gives the position),
 * BUFFER_TOO_SMALL (*len = needed length without NUL), OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_detokenize(const gemfa_model *model, const int32_t *ids, size_t n,
                                        unsigned flags, char *buf, size_t cap, size_t *len);

/* The raw bytes of one token's piece (e.g. "▁سلام", "<0xE2>" stays as the
 * text "<0xE2>", "<bos>"), NUL-terminated like gemfa_detokenize.  An id
 * without a piece gives "".  Errors as gemfa_detokenize. */
GEMFA_API gemfa_status gemfa_token_piece(const gemfa_model *model, int32_t id, char *buf,
                                         size_t cap, size_t *len);

/* The bytes token `id` adds to generated text, as the streaming
 * detokenizer assembles them: the single byte of a byte-fallback token
 * ("<0xE2>" gives the byte 0xE2, so the result need not be valid UTF-8),
 * else the piece after the decoder's replacements ("\u2581" becomes a
 * space); special tokens give their text ("<end_of_turn>"), an id without a
 * piece "".  What log-probabilities in OpenAI's shape report as a token's
 * `bytes`.  Output as gemfa_detokenize (NUL terminated, *len without it;
 * the bytes may contain U+0000).  Errors as gemfa_token_piece. */
GEMFA_API gemfa_status gemfa_token_bytes(const gemfa_model *model, int32_t id, char *buf,
                                         size_t cap, size_t *len);

/* Looks up the id of an exact piece or added-token text (added tokens
 * first, then the vocabulary, as HF's token_to_id); *id = -1 if none.
 * `piece` may be NULL when len is 0.  Errors: INVALID_ARGUMENT, NO_TOKENIZER. */
GEMFA_API gemfa_status gemfa_token_id(const gemfa_model *model, const char *piece, size_t len,
                                      int32_t *id);

/* Streaming detokenizer: feed one id at a time, get back only complete
 * UTF-8 text; a partial character (from byte-fallback tokens) is held back
 * until it completes or proves invalid.  For byte runs that are valid UTF-8
 * (everything the tokenizer itself produces) the chunks plus the final flush
 * concatenate to exactly what gemfa_detokenize returns.  Invalid bytes come
 * out as one U+FFFD each as soon as they prove invalid (a byte that can
 * start no character at once; a held-back start when a byte cannot continue
 * it or a non-byte token arrives); the batch decoder would instead replace
 * the whole run, including the valid characters the stream already showed. */
typedef struct gemfa_detok_stream gemfa_detok_stream;

/* Errors: INVALID_ARGUMENT, NO_TOKENIZER, OUT_OF_MEMORY.  The stream keeps a
 * pointer to the model, which must outlive it. */
GEMFA_API gemfa_status gemfa_detok_stream_new(const gemfa_model *model, unsigned flags,
                                              gemfa_detok_stream **out);
GEMFA_API void gemfa_detok_stream_free(gemfa_detok_stream *stream);
/* Forgets held-back bytes and history. */
GEMFA_API void gemfa_detok_stream_reset(gemfa_detok_stream *stream);
/* Feeds one id.  *text and *len receive the newly completed text (possibly
 * empty, never NULL on success); the pointer stays valid until the next call
 * on this stream.  Errors: INVALID_ARGUMENT, INVALID_TOKEN (the stream is
 * unchanged), OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_detok_stream_feed(gemfa_detok_stream *stream, int32_t id,
                                               const char **text, size_t *len);
/* Ends the stream: held-back incomplete bytes come out as one U+FFFD each
 * and the stream is empty again.  Same output rules as _feed; on
 * OUT_OF_MEMORY the held bytes stay. */
GEMFA_API gemfa_status gemfa_detok_stream_flush(gemfa_detok_stream *stream, const char **text,
                                                size_t *len);

/* ---------------------------------------------------------------------------
 * Stop strings
 *
 * A stop matcher watches generated text for any of a set of stop strings,
 * as the text arrives in pieces (typically the chunks of a detokenizer
 * stream, so a stop string may span several tokens, byte-fallback tokens
 * included).  Each feed releases the text that can no longer be part of a
 * stop string and holds back exactly the longest tail of the text seen so
 * far that is a proper prefix of some stop string (never more), so a host
 * can show text as soon as it is safe.  Matching is on bytes, exact (no
 * normalization).
 *
 * A hit is the first place where a stop string is complete: the match that
 * ends earliest in the text, and among stop strings ending there the
 * longest (so with "ab" and "b" the text "xab" stops after "x").  This
 * depends only on the text, not on how it was split into pieces, and it
 * stops generation as early as possible: with "b" and "abc", "ab..." stops
 * at "b" without waiting to see whether "abc" follows.  The released text
 * then ends just before the stop string; text after it is dropped.
 *
 * With valid UTF-8 input (what a detokenizer stream produces) every chunk
 * released ends on a character boundary, since held text starts where a
 * stop string (itself valid UTF-8) would start.
 *
 * Threads: a matcher is used by one thread at a time.  Memory: the matcher
 * copies the stop strings; feeding allocates only when a piece is longer
 * than any before.
 * ------------------------------------------------------------------------- */

typedef struct gemfa_stop_matcher gemfa_stop_matcher;

/* Creates a matcher for stops[0..n): stops[i] has lens[i] bytes (or
 * GEMFA_NUL_TERMINATED); `lens` may be NULL when every stop string is
 * NUL-terminated.  The strings are copied.  Duplicates are allowed.
 * Ownership: *out is the caller's, freed with gemfa_stop_matcher_free().
 * Errors: INVALID_ARGUMENT (NULL out or stops with n > 0, a NULL string,
 * an empty stop string -- it would match before any text; n == 0 is
 * allowed and never hits), INVALID_UTF8 (a stop string that is not valid
 * UTF-8; the message gives its index and the byte offset), OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_stop_matcher_new(const char *const *stops, const size_t *lens,
                                              size_t n, gemfa_stop_matcher **out);
/* Frees a matcher; NULL is a no-op. */
GEMFA_API void gemfa_stop_matcher_free(gemfa_stop_matcher *m);
/* Forgets held text and a hit: the matcher is as new. */
GEMFA_API void gemfa_stop_matcher_reset(gemfa_stop_matcher *m);

/* Feeds the next `len` bytes of text (or GEMFA_NUL_TERMINATED; `text` may
 * be NULL when len is 0).  *out / *out_len receive the text released by this
 * call (never NULL on success, possibly empty), valid until the next call
 * on this matcher.  *hit is set to 1 when a stop string is complete: the
 * released text then ends just before it (the matcher's released text in
 * total is the input up to the stop string), and later feeds release
 * nothing and keep *hit = 1 until gemfa_stop_matcher_reset.  Otherwise
 * *hit = 0.  Errors: INVALID_ARGUMENT (NULL matcher, out, out_len or hit;
 * NULL text with len > 0), OUT_OF_MEMORY (the matcher is unchanged). */
GEMFA_API gemfa_status gemfa_stop_matcher_feed(gemfa_stop_matcher *m, const char *text,
                                               size_t len, const char **out, size_t *out_len,
                                               int *hit);
/* Ends the text: releases the held-back tail (it can no longer become a
 * stop string; nothing after a hit) and resets the matcher.  Output rules
 * as _feed.  Errors: INVALID_ARGUMENT (NULL argument). */
GEMFA_API gemfa_status gemfa_stop_matcher_flush(gemfa_stop_matcher *m, const char **out,
                                                size_t *out_len);
/* Bytes currently held back (0 for NULL or after a hit). */
GEMFA_API size_t gemfa_stop_matcher_held(const gemfa_stop_matcher *m);

/* ---------------------------------------------------------------------------
 * Chat template (Gemma 3n instruction format)
 * ------------------------------------------------------------------------- */

/* One chat message.  This struct's layout is frozen (part of the ABI).
 * `role`: "system", "user", "assistant" (written "model") or "model",
 * NUL-terminated UTF-8.  Only a first "system" message is folded into the
 * first user turn; any other role (a later "system" included) is written
 * as given in its own turn, as the checkpoint's Jinja template does.  `content`: UTF-8 of
 * content_len bytes (or GEMFA_NUL_TERMINATED); NULL with content_len 0 is an
 * empty content. */
typedef struct gemfa_message {
    const char *role;
    const char *content;
    size_t content_len;
} gemfa_message;

/* Flags for gemfa_chat_tokenize(). */
#define GEMFA_CHAT_INJECTION_SAFE 0x1u /* contents are plain text: "<end_of_turn>" typed by a
                                          user is not the special token */

/* Renders messages as the Gemma 3n chat template does (starting with
 * "<bos>", a first system message's text + "\n\n" -- not trimmed --
 * folded into the first user turn, assistant written "model", contents
 * trimmed as Python's str.strip()), plus "<start_of_turn>model\n" when
 * add_generation_prompt is nonzero.  After an optional system message the
 * roles must alternate user, non-user, user, ...  A system message alone
 * renders just "<bos>" and the prompt.  The Gemma format is rendered even if
 * the checkpoint's template differs (a warning is logged at load).  Output
 * as gemfa_detokenize (NUL terminated, *len without the NUL).
 * Errors: INVALID_ARGUMENT (NULL role, NULL content with a length),
 * NO_TOKENIZER, INVALID_UTF8 (a role or content; message names which),
 * TEMPLATE (roles out of order -- the message contains the template's
 * "Conversation roles must alternate user/assistant/user/assistant/..." --
 * or no messages), BUFFER_TOO_SMALL, OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_apply_chat_template(const gemfa_model *model,
                                                 const gemfa_message *messages, size_t n_messages,
                                                 int add_generation_prompt, char *buf, size_t cap,
                                                 size_t *len);

/* Renders and tokenizes in one call, with exactly one <bos> (the rendered
 * text is tokenized without ADD_BOS).  flags: 0 matches HF (the rendered
 * text is tokenized with special tokens parsed, so "<end_of_turn>" typed in
 * a message ends the turn); GEMFA_CHAT_INJECTION_SAFE tokenizes the
 * template's own markup with special tokens and every role and content as
 * plain text -- for contents without special-token text the ids are the
 * same as with 0.  Errors as gemfa_apply_chat_template and gemfa_tokenize
 * (INVALID_ARGUMENT also for unknown flags). */
GEMFA_API gemfa_status gemfa_chat_tokenize(const gemfa_model *model,
                                           const gemfa_message *messages, size_t n_messages,
                                           int add_generation_prompt, unsigned flags,
                                           int32_t *ids, size_t cap, size_t *n_ids);

/* ---------------------------------------------------------------------------
 * Context: compute resources (threads, scratch).  Used by one thread at a
 * time; it serves any number of sessions in turn.
 * ------------------------------------------------------------------------- */

typedef struct gemfa_context gemfa_context;
typedef struct gemfa_context_options gemfa_context_options;

/* Polled between layers during decode; return nonzero to stop.  The decode
 * then returns GEMFA_ERR_CANCELLED and the session is as before the call. */
typedef int (*gemfa_cancel_fn)(void *user);

GEMFA_API gemfa_status gemfa_context_options_new(gemfa_context_options **out);
GEMFA_API void gemfa_context_options_free(gemfa_context_options *opts);
/* 0 = all cores.  Errors: INVALID_ARGUMENT (negative or > 1024). */
GEMFA_API gemfa_status gemfa_context_options_set_threads(gemfa_context_options *opts,
                                                         int n_threads);
/* fn may be NULL.  Errors: INVALID_ARGUMENT. */
GEMFA_API gemfa_status gemfa_context_options_set_cancel(gemfa_context_options *opts,
                                                        gemfa_cancel_fn fn, void *user);

/* Creates a context for `model` (opts may be NULL).  The model must outlive
 * the context.  Errors: INVALID_ARGUMENT, NO_WEIGHTS, OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_context_new(const gemfa_model *model,
                                         const gemfa_context_options *opts, gemfa_context **out);
/* Frees a context; NULL is a no-op.  Its sessions must be freed first. */
GEMFA_API void gemfa_context_free(gemfa_context *ctx);

/* ---------------------------------------------------------------------------
 * Session: one conversation (KV cache and position).  Sessions compute with
 * their context's scratch buffers: decode the sessions of one context from
 * one thread at a time (give each thread its own context).
 * ------------------------------------------------------------------------- */

typedef struct gemfa_session gemfa_session;
typedef struct gemfa_session_options gemfa_session_options;

GEMFA_API gemfa_status gemfa_session_options_new(gemfa_session_options **out);
GEMFA_API void gemfa_session_options_free(gemfa_session_options *opts);
/* Maximum number of tokens the session holds; 0 (default) = the model's
 * context length.  Errors: INVALID_ARGUMENT (negative).  The options know no
 * model: a value above the model's max_position_embeddings makes
 * gemfa_session_new fail with INVALID_ARGUMENT. */
GEMFA_API gemfa_status gemfa_session_options_set_max_context(gemfa_session_options *opts,
                                                             int64_t n_tokens);

/* ---------------------------------------------------------------------------
 * KV-cache types (issue 15): how a session stores its keys and values.
 * GEMFA_KV_F32 is exact (the reference); GEMFA_KV_F16 rounds every key and
 * value to IEEE half precision (round to nearest even) and halves the
 * cache's memory and the bytes attention reads at long positions; attention
 * still computes in f32.  Error bound: docs/numerics.md ("KV types").
 * ------------------------------------------------------------------------- */
typedef enum gemfa_kv_type {
    GEMFA_KV_F32 = 0,
    GEMFA_KV_F16 = 1
} gemfa_kv_type;

/* The KV type of sessions made with these options (default GEMFA_KV_F32).
 * gemfa_session_load / _load_file use it only when set explicitly: then a
 * state saved with another KV type is refused (INVALID_ARGUMENT) rather
 * than converted; unset, the loaded session keeps the state's type.
 * Errors: INVALID_ARGUMENT (NULL opts, a value outside gemfa_kv_type).
 * Threads: options are not shared; set them before use. */
GEMFA_API gemfa_status gemfa_session_options_set_kv_type(gemfa_session_options *opts,
                                                         gemfa_kv_type type);
/* Canonical name of a KV type ("f32", "f16"); "unknown" otherwise. */
GEMFA_API const char *gemfa_kv_type_name(gemfa_kv_type type);
/* Parses "f32" / "f16" into *type.  Errors: INVALID_ARGUMENT (NULL, an
 * unknown name; *type untouched). */
GEMFA_API gemfa_status gemfa_kv_type_parse(const char *name, gemfa_kv_type *type);

/* Creates an empty session computing with `ctx` (opts may be NULL).  The
 * context must outlive the session.  Errors: INVALID_ARGUMENT (NULL, or a
 * max context above the model's max_position_embeddings), OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_session_new(gemfa_context *ctx, const gemfa_session_options *opts,
                                         gemfa_session **out);
GEMFA_API void gemfa_session_free(gemfa_session *session);

/* Appends ids[0..n) (a prompt batch or one token) at the session's position
 * and runs the model.  On success *logits (may be NULL) points at the last
 * position's vocab-size logits, owned by the session and valid until the
 * next decode, reset or free of this session.
 * Errors: INVALID_ARGUMENT (n == 0, NULL), INVALID_TOKEN (an id outside the
 * vocabulary, or a multimodal id the checkpoint cannot embed),
 * CONTEXT_FULL, CANCELLED, OUT_OF_MEMORY.  On any error the session is
 * exactly as before. */
GEMFA_API gemfa_status gemfa_decode(gemfa_session *session, const int32_t *ids, size_t n,
                                    const float **logits);

/* As gemfa_decode, and writes every position's logits, row-major
 * [n][vocab], into the caller's buffer `all_logits` of `cap` floats.
 * Errors as gemfa_decode, plus BUFFER_TOO_SMALL (checked after the
 * arguments and the context room -- n past the context is CONTEXT_FULL --
 * and before anything runs; there is no size out-parameter: n * vocab
 * floats are needed).  After a CANCELLED decode the session is unchanged but the buffer
 * may hold the logits of the chunks that ran. */
GEMFA_API gemfa_status gemfa_decode_all(gemfa_session *session, const int32_t *ids, size_t n,
                                        float *all_logits, size_t cap);

/* One decode step for many sessions at once, reading each weight once:
 * sessions[i] receives ids[i].  All sessions must belong to `ctx` and be
 * distinct.  Afterwards each session's logits are read with
 * gemfa_session_logits().  Errors as gemfa_decode; on error no session
 * changes. */
GEMFA_API gemfa_status gemfa_decode_batch(gemfa_context *ctx, gemfa_session *const *sessions,
                                          const int32_t *ids, size_t n);

/* The last position's logits of the most recent decode (*logits = NULL if
 * the session is empty), *n_vocab their count.  Same lifetime as in
 * gemfa_decode.  Errors: INVALID_ARGUMENT. */
GEMFA_API gemfa_status gemfa_session_logits(const gemfa_session *session, const float **logits,
                                            size_t *n_vocab);

/* Empties the session (position 0) and keeps its memory. */
GEMFA_API void gemfa_session_reset(gemfa_session *session);
/* Tokens in the session; 0 for NULL. */
GEMFA_API size_t gemfa_session_n_tokens(const gemfa_session *session);
/* Maximum tokens the session holds; 0 for NULL. */
GEMFA_API size_t gemfa_session_max_context(const gemfa_session *session);
/* The ids decoded so far (*ids valid until the next decode/reset/free).
 * Errors: INVALID_ARGUMENT. */
GEMFA_API gemfa_status gemfa_session_tokens(const gemfa_session *session, const int32_t **ids,
                                            size_t *n);
/* Bytes of KV cache and per-session state allocated for this session. */
GEMFA_API size_t gemfa_session_memory_bytes(const gemfa_session *session);
/* The session's KV type (GEMFA_KV_F32 for NULL). */
GEMFA_API gemfa_kv_type gemfa_session_kv_type(const gemfa_session *session);
/* Bytes of the session's K/V stores alone (allocated at creation: full
 * layers max_context positions, sliding layers their ring); 0 for NULL.
 * = elem * 2 * n_kv_heads * head_dim * (full_owners * max_context +
 * sliding_owners * min(ring, max_context)), elem 4 (f32) or 2 (f16). */
GEMFA_API size_t gemfa_session_kv_bytes(const gemfa_session *session);
/* A deep copy sharing nothing mutable (same context), e.g. to reuse a
 * decoded system prompt.  Errors: INVALID_ARGUMENT, OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_session_fork(const gemfa_session *session, gemfa_session **out);

/* ---------------------------------------------------------------------------
 * Session state: rollback, save and restore (docs/session-state.md)
 * ------------------------------------------------------------------------- */

/* Keeps the first n tokens and drops the rest: the next decode continues
 * at position n, exactly as in a session that decoded only those n tokens.
 * The logits are cleared (gemfa_session_logits gives NULL) unless n equals
 * the token count (then nothing changes); to get the logits of position
 * n − 1 again, truncate to n − 1 and decode that token.
 * Cost: sliding-window layers keep a ring of W − 1 + chunk positions (W the
 * model's sliding window, chunk the context's rows per pass, 256), so
 * dropping up to `chunk` tokens decoded since the most recent decodes
 * (more precisely: whenever the W − 1 positions before n are still in
 * every ring) costs O(1).  A longer rollback re-decodes the n kept ids from
 * position 0 (the cost of a prompt of n tokens; cancellable through the
 * context's callback) into a second KV cache that replaces the old one on
 * success, so it needs the memory of one more KV cache for its duration.
 * Sessions whose whole context fits in the ring (max context <= W − 1 +
 * chunk) never re-decode.
 * Errors: INVALID_ARGUMENT (NULL session, n > gemfa_session_n_tokens),
 * OUT_OF_MEMORY, CANCELLED (re-decode only).  On error the session is as
 * before.  Threads: as gemfa_decode (uses the context's scratch). */
GEMFA_API gemfa_status gemfa_session_truncate(gemfa_session *session, size_t n);

/* Serialises the session -- token ids, positions, the KV cache of every
 * layer that owns one (sliding rings: the positions they still hold), the
 * last logits -- with a fingerprint of the model and a checksum, into
 * buf[0..cap).  *len receives the bytes written, or the bytes needed with
 * BUFFER_TOO_SMALL (call with buf NULL and cap 0 to query).  The size is
 * about 4 * (n_kv_layers * 2 * n_kv_heads * head_dim * positions + vocab)
 * bytes.  The session is not changed.
 * Errors: INVALID_ARGUMENT (NULL session or len, NULL buf with cap > 0),
 * BUFFER_TOO_SMALL, UNSUPPORTED (big-endian host).  Threads: reads the
 * session only (not while it decodes); the first save or load on a context
 * computes the model's fingerprint (reads samples of every tensor). */
GEMFA_API gemfa_status gemfa_session_save(const gemfa_session *session, void *buf, size_t cap,
                                          size_t *len);

/* As gemfa_session_save, to the file at `path`, written to a temporary
 * file in the same directory and renamed over `path`, so a reader never
 * sees a partial state.  Errors: INVALID_ARGUMENT, NOT_FOUND (the directory
 * does not exist), IO (message names the file), OUT_OF_MEMORY, UNSUPPORTED. */
GEMFA_API gemfa_status gemfa_session_save_file(const gemfa_session *session, const char *path);

/* Creates a new session on `ctx` holding the state in data[0..size) (made
 * by gemfa_session_save / _save_file, possibly in another process): it
 * continues exactly as the saved session would have -- the same logits, bit
 * for bit, for the same later decodes.  opts (may be NULL) sets the new
 * session's max context; 0 or NULL keeps the saved session's.  Every field
 * and length is checked before use, the checksum before anything is
 * allocated, and nothing is allocated beyond the session the header
 * describes (at most the model's context).  *out is set only on success.
 * Errors: INVALID_ARGUMENT (NULL ctx, data or out; a max context above the
 * model's), FORMAT (not a session state, truncated, trailing bytes, bad
 * checksum, inconsistent fields, invalid token ids, keys or values outside
 * the range the model's norms produce), UNSUPPORTED (a newer
 * format version, a KV type or flag this libgemfa does not know),
 * MODEL_MISMATCH (saved for another model, other weights or another weight
 * type), CONTEXT_FULL (the state holds more tokens than opts allows),
 * OUT_OF_MEMORY.  Threads: as gemfa_session_new. */
GEMFA_API gemfa_status gemfa_session_load(gemfa_context *ctx, const gemfa_session_options *opts,
                                          const void *data, size_t size, gemfa_session **out);

/* As gemfa_session_load, from the file at `path`: read in pieces straight
 * into the new session after the header has been checked against the
 * file's size; the checksum is verified as it is read and the session
 * freed on a mismatch (it is never returned).  Errors as
 * gemfa_session_load, plus NOT_FOUND (no such file) and IO (not a regular
 * file, unreadable). */
GEMFA_API gemfa_status gemfa_session_load_file(gemfa_context *ctx,
                                               const gemfa_session_options *opts,
                                               const char *path, gemfa_session **out);

/* ---------------------------------------------------------------------------
 * Sampler
 *
 * Picks the next token from a decode's logits.  The stages run in Hugging
 * Face's order: logit bias -> repetition penalty -> frequency and presence
 * penalties -> temperature -> top-k -> top-p -> min-p -> draw.  Ranking is
 * by logit, ties going to the lower id (so top-k keeps exactly k tokens
 * where HF would keep every token tied with the k-th).  A NaN logit counts
 * as -inf and +inf as the largest finite float.  The draw uses the
 * sampler's own generator (xoshiro256**, seeded through splitmix64) and
 * float arithmetic that does not depend on the platform's libm or FMA
 * contraction, so equal logits, options and seed give equal tokens on
 * every platform.
 *
 * Threads: a sampler is used by one thread at a time; different samplers
 * may be used concurrently.  Memory: scratch grows on the first calls to
 * about 4 bytes per vocabulary entry (8 with penalties) and is reused, so
 * later calls allocate nothing.
 * ------------------------------------------------------------------------- */

typedef struct gemfa_sampler gemfa_sampler;

/* Creates a sampler.  With a model, defaults come from its
 * generation_config.json read as HF's GenerationConfig does: do_sample
 * false or absent = greedy (temperature 0; the other values are kept for
 * when a temperature is set), and absent keys take HF's defaults (top_k 50,
 * top_p 1, temperature 1, no min_p, repetition_penalty 1); E4B gives top_k
 * 64, top_p 0.95, temperature 1.  With NULL, neutral defaults (temperature
 * 1, no top-k/top-p/min-p, no penalties).  Penalties see the whole history
 * (last_n 0), no logit bias, seed 0.  The sampler copies these values and
 * keeps no pointer to the model: it may outlive the model, and the two are
 * freed in any order.  Ownership: *out is the caller's, freed with
 * gemfa_sampler_free().
 * Errors: INVALID_ARGUMENT (out NULL), CONFIG (a generation_config value
 * out of range), OUT_OF_MEMORY; *out is then untouched. */
GEMFA_API gemfa_status gemfa_sampler_new(const gemfa_model *model, gemfa_sampler **out);
/* Frees a sampler; NULL is a no-op. */
GEMFA_API void gemfa_sampler_free(gemfa_sampler *sampler);

/* Setters; each returns INVALID_ARGUMENT for a NULL sampler or a value out
 * of range (NaN included) and then changes nothing.  A setting holds until
 * set again. */
/* Finite t >= 0; 0 = greedy: the first maximum after bias and penalties
 * (top-k/top-p/min-p are then ignored and no random draw is used). */
GEMFA_API gemfa_status gemfa_sampler_set_temperature(gemfa_sampler *s, float t);
/* k >= 0; 0 = off (as is any k >= the vocabulary size). */
GEMFA_API gemfa_status gemfa_sampler_set_top_k(gemfa_sampler *s, int32_t k);
/* 0 < p <= 1; 1 = off.  Keeps the shortest run of best tokens whose
 * probability (after temperature, renormalized over the top-k) reaches p. */
GEMFA_API gemfa_status gemfa_sampler_set_top_p(gemfa_sampler *s, float p);
/* 0 <= p <= 1; 0 = off.  Keeps tokens whose probability is at least p times
 * the top token's (after temperature, top-k and top-p). */
GEMFA_API gemfa_status gemfa_sampler_set_min_p(gemfa_sampler *s, float p);
/* Penalties over the last `last_n` history tokens (last_n 0 = the whole
 * history; last_n >= 0).  repetition (finite, > 0; 1 = off) as HF: once per
 * distinct token seen, a logit > 0 is divided by it, one < 0 multiplied.
 * Then frequency and presence (finite, may be negative; 0 = off) as OpenAI:
 * logit -= count * frequency + (count > 0) * presence. */
GEMFA_API gemfa_status gemfa_sampler_set_penalties(gemfa_sampler *s, float repetition,
                                                   float frequency, float presence,
                                                   int32_t last_n);
/* Adds `bias` (finite, or -INFINITY to ban the token) to the logit of token
 * `id` >= 0, replacing an earlier bias for it; applied before the
 * penalties, as HF's sequence_bias.  The id is checked against the
 * vocabulary when sampling.  Errors: INVALID_ARGUMENT, OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_sampler_set_logit_bias(gemfa_sampler *s, int32_t id, float bias);
/* Removes every logit bias. */
GEMFA_API gemfa_status gemfa_sampler_clear_logit_bias(gemfa_sampler *s);
/* Restarts the generator from `seed` (any value): the same seed gives the
 * same draws on every platform. */
GEMFA_API gemfa_status gemfa_sampler_set_seed(gemfa_sampler *s, uint64_t seed);

/* Picks a token from logits[0..n_vocab) (read only, never modified) and
 * stores it in *id.  `history` is what the penalties see, usually
 * gemfa_session_tokens (prompt included); it may be NULL when n_history is
 * 0 and is not read when every penalty is off.  Each call that samples
 * (temperature > 0) uses exactly one draw of the generator; greedy uses
 * none.  Errors: INVALID_ARGUMENT (NULL sampler, logits or id; n_vocab 0 or
 * above INT32_MAX; history NULL with n_history > 0; every logit -inf or NaN
 * after bias and penalties), INVALID_TOKEN (a logit bias set for an id >=
 * n_vocab, or an id in the penalty window outside [0, n_vocab)),
 * OUT_OF_MEMORY.  On error the sampler (options and generator) and *id are
 * unchanged. */
GEMFA_API gemfa_status gemfa_sample(gemfa_sampler *s, const float *logits, size_t n_vocab,
                                    const int32_t *history, size_t n_history, int32_t *id);

/* ---------------------------------------------------------------------------
 * Speculative decoding (docs/speculative.md)
 *
 * A speculator generates with a target session and a cheap draft: each
 * step the draft proposes up to k tokens, the target scores all of them in
 * one batched forward pass (gemfa_decode_all), and the step returns the
 * longest prefix the target accepts plus one token of the target's own --
 * 1 to k + 1 tokens for one pass of the target.
 *
 * Exactness.  With a greedy sampler (temperature 0) the tokens are those
 * of plain greedy decoding with the target (gemfa_sample on each decode's
 * logits), up to logit near-ties that the batched pass breaks otherwise
 * than a one-token pass (docs/speculative.md).  With temperature > 0 each
 * token follows the target's sampling distribution exactly: draft token x
 * is kept with probability min(1, p(x) / q(x)), else the step ends with a
 * token drawn from max(0, p - q) renormalized, where p is the sampler's
 * final distribution over the target's logits and q over the draft's.
 * The sampler's whole pipeline defines p and q: logit bias, repetition,
 * frequency and presence penalties (their history includes the drafted
 * tokens before each position), temperature, top-k, top-p, min-p.  A
 * sampler with a constraint attached is refused (UNSUPPORTED).  The draws
 * use the sampler's generator, but not in the order gemfa_sample would,
 * so a seed gives other (equally distributed) tokens than plain sampling.
 *
 * The pending token.  Like a plain loop that samples a token and decodes
 * it only before sampling the next, a step leaves its last token undecoded:
 * afterwards the target holds every returned token but the last, and the
 * next step decodes that one in the same pass as the new draft.  Between
 * steps do not decode into, truncate or reset the target: the next step
 * then fails with INVALID_ARGUMENT.  Call gemfa_speculator_flush to decode
 * the pending token (the target is then as after plain decoding, with
 * logits) or gemfa_speculator_reset to drop it; after either the target is
 * the caller's again and the next step starts from it as it is then.
 *
 * Threads: a speculator is used by one thread at a time, and while a step
 * runs it decodes into the target session (so the target's context must
 * not be used by another thread).  The draft model is only read and may
 * be shared.  Memory: the draft's context and session (its KV cache sized
 * like the target's max context) and (k + 1) * 2 * vocab floats.
 * ------------------------------------------------------------------------- */

typedef struct gemfa_speculator gemfa_speculator;

/* Largest k a speculator accepts (verification runs k + 1 rows at once). */
#define GEMFA_SPECULATOR_MAX_K 32

/* Creates a speculator for `target` (a session with its prompt decoded, or
 * about to be) drafting with `draft`, a model with the target's vocabulary:
 * a MatFormer sub-model of the target's model, a smaller checkpoint, or the
 * target's model itself.  The speculator makes the draft its own context
 * (threads and cancel callback copied from the target's context) and
 * session (max context as the target's).  1 <= k <= GEMFA_SPECULATOR_MAX_K.
 * Ownership: the target session and the draft model stay the caller's and
 * must outlive the speculator; *out is the caller's, freed with
 * gemfa_speculator_free().
 * Errors: INVALID_ARGUMENT (NULL argument, k out of range), NO_WEIGHTS
 * (draft loaded vocabulary-only), MODEL_MISMATCH (the draft's vocabulary
 * size differs from the target's, or both have tokenizers and their sizes,
 * <bos> or end-of-generation ids differ), OUT_OF_MEMORY.  *out untouched. */
GEMFA_API gemfa_status gemfa_speculator_new(gemfa_session *target, const gemfa_model *draft,
                                            int k, gemfa_speculator **out);

/* A draft written by the caller (prompt lookup, a cache, a test oracle):
 * proposes up to `max` ids to follow tokens[0..n_tokens) (the target's
 * tokens and the pending one) into ids[0..max) and returns how many (0 to
 * max; 0 makes the step a plain one-token step).  Its proposals count as
 * certain (q = 1 for the proposed id): the exactness rules above hold.
 * Called on the stepping thread; a negative return value aborts the step
 * with CANCELLED, any value above max with INVALID_ARGUMENT. */
typedef int (*gemfa_draft_fn)(void *user, const int32_t *tokens, size_t n_tokens, int32_t *ids,
                              size_t max);

/* As gemfa_speculator_new with a caller's draft function instead of a
 * model (`user` is passed back to it and must outlive the speculator).
 * Errors: INVALID_ARGUMENT (NULL target, fn or out; k out of range),
 * OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_speculator_new_fn(gemfa_session *target, gemfa_draft_fn fn,
                                               void *user, int k, gemfa_speculator **out);

/* Frees a speculator and its draft context and session (not the target,
 * which keeps every returned token but the pending one); NULL is a no-op. */
GEMFA_API void gemfa_speculator_free(gemfa_speculator *sp);

/* Changes k for later steps.  Errors: INVALID_ARGUMENT (NULL, k out of
 * range). */
GEMFA_API gemfa_status gemfa_speculator_set_k(gemfa_speculator *sp, int k);

/* One step: drafts, verifies, and writes 1 to k + 1 new tokens into
 * ids[0..cap), *n their count.  The first token is sampled from the
 * target's current logits, so before the first step (or after a flush or
 * reset) the target must hold at least one token and its logits.  Fewer
 * tokens are drafted when the target's context has no room for k more (the
 * step then still returns one).  The step does not look for
 * end-of-generation ids: a returned one may be followed by others, so cut
 * the output at the first one (gemfa_model_is_eog).
 * Errors: INVALID_ARGUMENT (NULL argument; the target was changed since
 * the last step, or holds no logits), BUFFER_TOO_SMALL (cap < k + 1; *n =
 * k + 1; checked before anything runs), UNSUPPORTED (a constraint is
 * attached to the sampler), CONTEXT_FULL (the pending token does not fit
 * in the target's context: what a plain loop meets when it decodes that
 * token), CANCELLED (a context's cancel callback or the draft function),
 * OUT_OF_MEMORY, and the sampler's errors (INVALID_ARGUMENT when bias
 * leaves no finite logit, INVALID_TOKEN).  On error the target session,
 * the pending token and the sampler's generator are as before the call
 * (the draft's own session may have moved: it is re-synchronised). */
GEMFA_API gemfa_status gemfa_speculator_step(gemfa_speculator *sp, gemfa_sampler *sampler,
                                             int32_t *ids, size_t cap, size_t *n);

/* Decodes the pending token into the target (no-op without one), so that
 * the target holds every returned token and the logits after the last.
 * Errors as gemfa_decode (CONTEXT_FULL: the pending token stays pending). */
GEMFA_API gemfa_status gemfa_speculator_flush(gemfa_speculator *sp);

/* Forgets the pending token (the target is not touched); NULL is a no-op. */
GEMFA_API void gemfa_speculator_reset(gemfa_speculator *sp);

/* Counters since the speculator was created.  Layout frozen (ABI). */
typedef struct gemfa_speculator_stats {
    uint64_t steps;          /* successful steps */
    uint64_t drafted;        /* tokens the draft proposed */
    uint64_t accepted;       /* of those, kept by the target */
    uint64_t emitted;        /* tokens returned (accepted + one per step) */
    uint64_t target_rows;    /* positions the target decoded (batched) */
    uint64_t draft_rows;     /* positions the draft decoded */
    double draft_seconds;    /* wall time drafting (sync included) */
    double verify_seconds;   /* wall time of the target's passes and the acceptance */
} gemfa_speculator_stats;

/* Copies the counters into *out.  Errors: INVALID_ARGUMENT (NULL). */
GEMFA_API gemfa_status gemfa_speculator_get_stats(const gemfa_speculator *sp,
                                                  gemfa_speculator_stats *out);

/* ---------------------------------------------------------------------------
 * Log-probabilities
 * ------------------------------------------------------------------------- */

/* Log-probabilities under the RAW logits of a decode (OpenAI's definition:
 * log-softmax before temperature, penalties, bias and truncation):
 * logprob(i) = logits[i] - max - log(sum_j exp(logits[j] - max)), the sum
 * accumulated in double.  As in the sampler a NaN logit counts as -inf
 * (logprob -inf) and +inf as the largest finite float.  Cost: two passes
 * over the logits plus a partial selection of the top_n (docs/performance.md),
 * small next to gemfa_sample, so it can be asked for every token.
 *
 * `chosen_logprob` (may be NULL: then `chosen` is not read) receives the
 * logprob of token `chosen`.  With top_n > 0, the top_n most likely tokens,
 * best first and ties to the lower id (the sampler's order), go to
 * top_ids[0..*n_top) and top_logprobs[0..*n_top), where *n_top = top_n,
 * fewer when the vocabulary is smaller or fewer logits are above -inf.
 * `n_top` may be NULL only when top_n is 0 (then the top arrays are not
 * read and may be NULL).  Pure function: thread-safe, no state; it
 * allocates only for top_n above 32.
 * Errors: INVALID_ARGUMENT (NULL logits; n_vocab 0 or above INT32_MAX;
 * top_n > 0 with a NULL top_ids, top_logprobs or n_top; every logit -inf or
 * NaN), INVALID_TOKEN (chosen outside [0, n_vocab) with chosen_logprob
 * set), OUT_OF_MEMORY.  On error no output is written. */
GEMFA_API gemfa_status gemfa_logprobs(const float *logits, size_t n_vocab, int32_t chosen,
                                      float *chosen_logprob, size_t top_n, int32_t *top_ids,
                                      float *top_logprobs, size_t *n_top);

/* ---------------------------------------------------------------------------
 * Constrained output: JSON and JSON Schema
 *
 * A constraint restricts generation to the tokens that can continue a JSON
 * text, optionally one that validates against a JSON Schema.  Attach it to
 * a sampler with gemfa_sampler_set_constraint(): gemfa_sample() then never
 * returns a token the constraint refuses (whatever the temperature, top-k,
 * top-p, min-p, penalties or biases) and advances the constraint by the
 * token it returns.  The grammar runs over bytes, so tokens that span
 * several JSON elements (`",`) or hold part of a UTF-8 character
 * (byte-fallback tokens such as <0xD8>) are handled exactly.
 *
 * What is written (a subset of JSON, so that every generation can end):
 * at most 1 + 2 * depth whitespace bytes between two elements (the document
 * is depth 0, capped at 15); numbers with at most 19 integer and 19
 * fraction digits and a 3-digit exponent; strings as valid UTF-8 without raw
 * control bytes, \u escapes outside D800-DFFF; at most 64 nested
 * elements.  End-of-generation tokens (gemfa_model_eog_ids) are allowed
 * only once the value is complete; then only they and trailing whitespace
 * are (a top-level number may also go on with digits).  Special tokens are
 * never allowed otherwise.  With a model that has no end-of-generation ids
 * (a bare tokenizer), stop when gemfa_constraint_is_complete() says so:
 * past the trailing whitespace nothing is allowed.
 *
 * JSON Schema subset: type (a name or a list), properties, required,
 * additionalProperties (extra keys are never written, so the output
 * validates whatever its value), items, enum, const, minLength, maxLength,
 * minimum, maximum, exclusiveMinimum, exclusiveMaximum, minItems,
 * maxItems; annotations (title, description, default, examples, $schema,
 * $id, $comment, readOnly, writeOnly, deprecated) are ignored.  Object
 * properties are written in the schema's order; optional ones may be
 * skipped.  Without "type", the keywords decide (properties: object,
 * items: array, maxLength: string, minimum: number), else any value.
 * Bounds on strings (maxLength), arrays (maxItems) and numbers (minimum and
 * maximum, which also rule out exponents) let a schema guarantee that a
 * generation ends.  Any other keyword is GEMFA_ERR_UNSUPPORTED.
 *
 * Threads: a constraint is used by one thread at a time (it holds the
 * state and a mask cache); it keeps no pointer to the model.  Memory: the
 * vocabulary trie (~10 bytes per vocabulary byte) and up to 512 cached
 * masks of vocab/8 bytes each.
 * ------------------------------------------------------------------------- */

typedef struct gemfa_constraint gemfa_constraint;

/* Compiles `schema` (UTF-8 JSON of len bytes, or GEMFA_NUL_TERMINATED) for
 * `model`'s vocabulary.  NULL (len 0), "" or "{}" mean any JSON value.
 * Creation builds a trie of the vocabulary and walks it (about 0.15 s of
 * CPU for Gemma's 262k tokens; reuse a constraint with
 * gemfa_constraint_reset).  Ownership: *out is the caller's, freed with
 * gemfa_constraint_free(); the model may be freed before it.
 * Errors: INVALID_ARGUMENT (NULL model or out; NULL schema with a length;
 * a keyword with a wrong value; bounds that leave nothing), FORMAT (schema
 * is not JSON), UNSUPPORTED (a keyword outside the subset, the message
 * names it and where), NO_TOKENIZER, OUT_OF_MEMORY.  *out untouched. */
GEMFA_API gemfa_status gemfa_constraint_new_json(const gemfa_model *model, const char *schema,
                                                 size_t len, gemfa_constraint **out);
/* Frees a constraint; NULL is a no-op.  Detach it from samplers first. */
GEMFA_API void gemfa_constraint_free(gemfa_constraint *c);
/* Back to the start of a document (cached masks are kept).
 * Errors: INVALID_ARGUMENT. */
GEMFA_API gemfa_status gemfa_constraint_reset(gemfa_constraint *c);
/* Advances by one token, e.g. a token the caller forces.  gemfa_sample()
 * calls this itself for a sampler the constraint is attached to: do not
 * call it again for sampled tokens.  An end-of-generation token is accepted
 * when the value is complete and ends the document (then only
 * end-of-generation tokens are allowed).  Errors: INVALID_ARGUMENT (NULL),
 * INVALID_TOKEN (id outside the vocabulary, or a token that cannot continue
 * the text here; the message says which); the constraint is then
 * unchanged. */
GEMFA_API gemfa_status gemfa_constraint_accept(gemfa_constraint *c, int32_t id);
/* Nonzero when the text so far is a complete JSON value (valid for the
 * schema), i.e. an end-of-generation token is allowed; 0 for NULL. */
GEMFA_API int gemfa_constraint_is_complete(const gemfa_constraint *c);
/* Writes allowed[id] = 1 for every token allowed next and 0 for the others,
 * for every id of the vocabulary (GEMFA_PROP_VOCAB_SIZE entries); *n
 * receives that count.  Errors: INVALID_ARGUMENT, BUFFER_TOO_SMALL (*n =
 * needed entries), OUT_OF_MEMORY. */
GEMFA_API gemfa_status gemfa_constraint_mask(gemfa_constraint *c, uint8_t *allowed, size_t cap,
                                             size_t *n);

/* Attaches `c` to the sampler (NULL detaches).  The sampler does not own
 * it: keep it alive while attached.  While attached, gemfa_sample() and
 * the sampler's logits must be over the constraint's vocabulary (n_vocab
 * equal to GEMFA_PROP_VOCAB_SIZE), refused tokens count as -inf before any
 * other stage, and each successful call advances the constraint by the
 * returned token; if every allowed token has logit -inf (or NaN) after bias
 * and penalties, gemfa_sample() fails with INVALID_ARGUMENT and nothing
 * changes.  Errors: INVALID_ARGUMENT (NULL sampler). */
GEMFA_API gemfa_status gemfa_sampler_set_constraint(gemfa_sampler *s, gemfa_constraint *c);

#ifdef __cplusplus
}
#endif

#endif /* GEMFA_H */
