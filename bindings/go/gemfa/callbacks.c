/* callbacks.c — see callbacks.h. */
#include "callbacks.h"
#include "_cgo_export.h"

static int cancel_trampoline(void *user)
{
    return goCancelCallback((uintptr_t)user);
}

static int progress_trampoline(void *user, float fraction, const char *stage)
{
    return goProgressCallback((uintptr_t)user, fraction, (char *)stage);
}

static void log_trampoline(void *user, gemfa_log_level level, const char *msg)
{
    (void)user;
    goLogCallback((int)level, (char *)msg);
}

gemfa_status gemfa_go_set_cancel(gemfa_context_options *opts, uintptr_t handle)
{
    return gemfa_context_options_set_cancel(opts, cancel_trampoline, (void *)handle);
}

gemfa_status gemfa_go_set_progress(gemfa_model_options *opts, uintptr_t handle)
{
    return gemfa_model_options_set_progress(opts, progress_trampoline, (void *)handle);
}

void gemfa_go_set_log(int on, int max_level)
{
    gemfa_set_log_callback(on ? log_trampoline : NULL, NULL, (gemfa_log_level)max_level);
}

static int draft_trampoline(void *user, const int32_t *tokens, size_t n, int32_t *ids, size_t max)
{
    return goDraftCallback((uintptr_t)user, (int32_t *)tokens, n, ids, max);
}

gemfa_status gemfa_go_speculator_new_fn(gemfa_session *target, uintptr_t handle, int k,
                                        gemfa_speculator **out)
{
    return gemfa_speculator_new_fn(target, draft_trampoline, (void *)handle, k, out);
}
