/* cli_cache.c — see cli_cache.h. */
#include "cli_cache.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

size_t cli_common_prefix(const gemfa_session *s, const int32_t *ids, size_t n)
{
    const int32_t *have;
    size_t n_have, i = 0;
    if (gemfa_session_tokens(s, &have, &n_have) != GEMFA_OK)
        return 0;
    while (i < n_have && i < n && have[i] == ids[i])
        i++;
    return i;
}

int cli_cache_load(gemfa_context *ctx, gemfa_session **s, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT)
        return 0; /* first run: the cache is written after the prompt */
    gemfa_session_options *o = NULL;
    gemfa_session *loaded = NULL;
    gemfa_status st = gemfa_session_options_new(&o);
    if (st == GEMFA_OK)
        st = gemfa_session_options_set_max_context(o, (int64_t)gemfa_session_max_context(*s));
    if (st == GEMFA_OK) /* a cache of another KV type is rebuilt */
        st = gemfa_session_options_set_kv_type(o, gemfa_session_kv_type(*s));
    if (st == GEMFA_OK)
        st = gemfa_session_load_file(ctx, o, path, &loaded);
    gemfa_session_options_free(o);
    if (st != GEMFA_OK) {
        fprintf(stderr, "gemfa: prompt cache %s is not usable (%s: %s); rebuilding it\n", path,
                gemfa_status_name(st), gemfa_last_error());
        return 0;
    }
    gemfa_session_free(*s);
    *s = loaded;
    return 1;
}

void cli_cache_save(const gemfa_session *s, const char *path)
{
    gemfa_status st = gemfa_session_save_file(s, path);
    if (st != GEMFA_OK)
        fprintf(stderr, "gemfa: cannot write the prompt cache %s: %s: %s\n", path,
                gemfa_status_name(st), gemfa_last_error());
}

gemfa_status cli_sync_prefix(gemfa_session *s, const int32_t *ids, size_t n, size_t *reused)
{
    size_t keep = cli_common_prefix(s, ids, n);
    if (keep >= n)
        keep = n - 1; /* decode the last id again: its logits start the answer */
    gemfa_status st = gemfa_session_truncate(s, keep);
    if (st != GEMFA_OK)
        return st;
    *reused = keep;
    return gemfa_decode(s, ids + keep, n - keep, NULL);
}
