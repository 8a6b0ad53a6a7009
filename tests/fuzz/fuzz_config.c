/* fuzz_config.c — config.json reading: strict JSON (gf_json_parse), the
 * hyper-parameters (gf_config_parse, which bounds every value) and the id
 * lists.  On success the values the forward pass relies on must be sane. */
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"
#include "fuzz_common.h"
#include "loader/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gf_json *root = NULL;
    gemfa_status st = gf_json_parse((const char *)data, size, "config.json", &root);
    fuzz_check_status(st, "gf_json_parse");
    if (st != GEMFA_OK) {
        FUZZ_CHECK(root == NULL, "tree on failure");
        return 0;
    }
    gf_hparams hp;
    memset(&hp, 0x5a, sizeof hp);
    st = gf_config_parse(root, "config.json", &hp);
    fuzz_check_status(st, "gf_config_parse");
    if (st == GEMFA_OK) {
        FUZZ_CHECK(hp.n_layers > 0 && hp.hidden_size > 0 && hp.vocab_size > 0, "sizes");
        FUZZ_CHECK(hp.n_heads > 0 && hp.n_kv_heads > 0 && hp.n_heads % hp.n_kv_heads == 0,
                   "heads %d/%d", (int)hp.n_heads, (int)hp.n_kv_heads);
        for (int l = 0; l < hp.n_layers; l++)
            FUZZ_CHECK(hp.kv_source[l] >= 0 && hp.kv_source[l] <= l, "kv_source[%d]", l);
    }
    gf_hparams_free(&hp);
    const gf_json *text = gf_config_text_section(root);
    const char *keys[] = {"eos_token_id", "bos_token_id", "pad_token_id"};
    for (size_t k = 0; k < 3; k++) {
        int32_t *ids = NULL;
        size_t n = 0;
        const gf_json *v = gf_json_get(text, keys[k]);
        st = gf_config_id_list(v, &ids, &n);
        fuzz_check_status(st, "gf_config_id_list");
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(ids[i] >= 0, "negative id kept");
        gf_free(ids);
    }
    gf_json_free(root);
    return 0;
}
