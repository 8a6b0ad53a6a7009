/* fuzz_common.h — shared by the libFuzzer targets of tests/fuzz/.
 *
 * Each target defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  With -Dfuzz=true (clang) each is linked with
 * libFuzzer; in every build it is also linked with replay.c, a plain main()
 * that runs it over the committed seed corpus and the regression inputs
 * (tests/fuzz/{corpus,regressions}/<target>/): a normal meson test.
 *
 * A target reports a broken property with FUZZ_CHECK, which aborts, so
 * libFuzzer saves the input and the replay test fails. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gemfa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                      \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                          \
            fprintf(stderr, " (last error: %s)\n", gemfa_last_error());            \
            abort();                                                               \
        }                                                                          \
    } while (0)

/* tests/data: $GEMFA_TEST_DATA, else the source tree's (compiled in). */
const char *fuzz_data_dir(void);
/* The tiny model's directory, tests/data/tiny-gemma3n. */
const char *fuzz_tiny_dir(void);
/* A private directory for files a target writes (made once, removed at exit). */
const char *fuzz_tmp_dir(void);
/* Writes data[0..size) to <fuzz_tmp_dir()>/<name>; aborts on I/O errors. */
void fuzz_write(const char *name, const void *data, size_t size);
/* Removes <fuzz_tmp_dir()>/<name> if present. */
void fuzz_remove(const char *name);

/* The tiny model, loaded once (vocab_only: tokenizer only). */
gemfa_model *fuzz_tiny_model(int vocab_only);

/* 1 when s[0..len) is valid UTF-8 (independent of libgemfa's checker). */
int fuzz_utf8_valid(const char *s, size_t len);

/* Every status a public call can return is a known one with a message. */
void fuzz_check_status(gemfa_status st, const char *call);

#endif
