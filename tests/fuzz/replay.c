/* replay.c — runs a fuzz target over files and directories of inputs
 * (the committed seed corpus and regression inputs), without libFuzzer:
 *   replay_<target> DIR_OR_FILE...
 * A broken property aborts (FUZZ_CHECK); sanitizers report as usual.
 * Prints one line per argument with the count of inputs run. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* an exact-size heap copy, so ASan sees reads past the input's end */
    uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
    if (!data || (size > 0 && fread(data, 1, (size_t)size, f) != (size_t)size)) {
        perror(path);
        fclose(f);
        free(data);
        return -1;
    }
    fclose(f);
    fprintf(stderr, "replay: %s\n", path);
    LLVMFuzzerTestOneInput(data, (size_t)size);
    free(data);
    return 1;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            bad = 1;
            continue;
        }
        long n = 0;
        if (S_ISDIR(st.st_mode)) {
            struct dirent **names;
            int k = scandir(argv[i], &names, NULL, by_name);
            for (int j = 0; j < k; j++) {
                char path[8192];
                snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
                struct stat fst;
                if (names[j]->d_name[0] != '.' && stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
                    int r = run_file(path);
                    bad |= r < 0;
                    n += r > 0;
                }
                free(names[j]);
            }
            free(names);
        } else {
            int r = run_file(argv[i]);
            bad |= r < 0;
            n += r > 0;
        }
        printf("%s: %ld inputs\n", argv[i], n);
    }
    return bad;
}
