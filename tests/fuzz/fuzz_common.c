/* fuzz_common.c — see fuzz_common.h. */
#define _GNU_SOURCE
#include "fuzz_common.h"

#include <ftw.h>
#include <string.h>
#include <unistd.h>

#ifndef GEMFA_FUZZ_DATA
#error "GEMFA_FUZZ_DATA (the source tree's tests/data) must be defined"
#endif

const char *fuzz_data_dir(void)
{
    const char *env = getenv("GEMFA_TEST_DATA");
    return env && *env ? env : GEMFA_FUZZ_DATA;
}

const char *fuzz_tiny_dir(void)
{
    static char path[4096];
    if (!path[0])
        snprintf(path, sizeof path, "%s/tiny-gemma3n", fuzz_data_dir());
    return path;
}

static char tmp_dir[4096];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tmp_dir(void)
{
    if (tmp_dir[0])
        nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmp_dir(void)
{
    if (!tmp_dir[0]) {
        /* /dev/shm when there is one: targets write a file per input */
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(tmp_dir, sizeof tmp_dir, "%s/gemfa-fuzz-XXXXXX", base);
        if (!mkdtemp(tmp_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(remove_tmp_dir);
    }
    return tmp_dir;
}

void fuzz_write(const char *name, const void *data, size_t size)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", fuzz_tmp_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

void fuzz_remove(const char *name)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/%s", fuzz_tmp_dir(), name);
    unlink(path);
}

gemfa_model *fuzz_tiny_model(int vocab_only)
{
    static gemfa_model *models[2];
    gemfa_model **m = &models[vocab_only ? 1 : 0];
    if (!*m) {
        gemfa_model_options *o = NULL;
        if (gemfa_model_options_new(&o) || gemfa_model_options_set_vocab_only(o, vocab_only) ||
            gemfa_model_load(fuzz_tiny_dir(), o, m)) {
            fprintf(stderr, "cannot load %s: %s\n", fuzz_tiny_dir(), gemfa_last_error());
            abort();
        }
        gemfa_model_options_free(o);
    }
    return *m;
}

int fuzz_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len - i < n)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n;
    }
    return 1;
}

void fuzz_check_status(gemfa_status st, const char *call)
{
    /* any status of gemfa.h (the enum is append-only) but INTERNAL */
    FUZZ_CHECK(strcmp(gemfa_status_name(st), "GEMFA_ERR_UNKNOWN") != 0, "%s returned %d", call,
               (int)st);
    FUZZ_CHECK(st != GEMFA_ERR_INTERNAL, "%s: internal error", call);
    if (st != GEMFA_OK)
        FUZZ_CHECK(gemfa_last_error()[0] != '\0', "%s failed (%s) without a message", call,
                   gemfa_status_name(st));
}
