/* cli_cache.h — `--prompt-cache FILE` for generate and chat, and bringing a
 * session to a given id sequence through gemfa_session_truncate. */
#ifndef GEMFA_CLI_CACHE_H
#define GEMFA_CLI_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "gemfa.h"

/* Replaces *s (an empty session of ctx) with the state saved in `path` when
 * that loads into a session of the same max context.  A missing file is
 * silent; any other failure (another model's state, a damaged file, too
 * many tokens) is reported on stderr, and *s stays as it was, to be rebuilt.
 * Returns 1 when the state was loaded. */
int cli_cache_load(gemfa_context *ctx, gemfa_session **s, const char *path);

/* Writes the state of s to `path`; a failure is reported on stderr only. */
void cli_cache_save(const gemfa_session *s, const char *path);

/* Brings s to exactly ids[0..n) (n > 0) with fresh logits: keeps the longest
 * common prefix (at most n − 1 ids, so the last one is decoded again when
 * everything matches), truncates the rest and decodes what is missing.
 * *reused receives the ids kept.  Errors as gemfa_session_truncate and
 * gemfa_decode. */
gemfa_status cli_sync_prefix(gemfa_session *s, const int32_t *ids, size_t n, size_t *reused);

/* Length of the common prefix of the session's ids and ids[0..n). */
size_t cli_common_prefix(const gemfa_session *s, const int32_t *ids, size_t n);

#endif
