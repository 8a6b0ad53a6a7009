/* lora_options.c — gemfa_model_options_add_lora: the adapter list of a
 * model options object (read at load by lora.c). */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "loader/load.h"
#include "loader/lora.h"

/* More would only be a mistake (and each keeps a file mapped during load). */
#define MAX_ADAPTERS 64

void gf_lora_requests_free(gf_lora_request *req, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gf_free(req[i].dir);
    gf_free(req);
}

GEMFA_API gemfa_status gemfa_model_options_add_lora(gemfa_model_options *opts, const char *dir,
                                                    float scale)
{
    if (!opts || !dir)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT, "gemfa_model_options_add_lora: %s is NULL",
                        !opts ? "opts" : "dir");
    if (!*dir)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_model_options_add_lora: the adapter directory is empty");
    if (!isfinite(scale))
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_model_options_add_lora: scale %g is not a finite number",
                        (double)scale);
    if (opts->n_lora >= MAX_ADAPTERS)
        return gf_error(GEMFA_ERR_INVALID_ARGUMENT,
                        "gemfa_model_options_add_lora: at most %d adapters", MAX_ADAPTERS);
    char *copy = gf_strndup(dir, strlen(dir));
    gf_lora_request *list =
        copy ? gf_realloc(opts->lora, gf_mul_size(opts->n_lora + 1, sizeof *list)) : NULL;
    if (!list) {
        gf_free(copy);
        return gf_error(GEMFA_ERR_OUT_OF_MEMORY, "gemfa_model_options_add_lora: out of memory");
    }
    list[opts->n_lora] = (gf_lora_request){copy, (double)scale};
    opts->lora = list;
    opts->n_lora++;
    return GEMFA_OK;
}
