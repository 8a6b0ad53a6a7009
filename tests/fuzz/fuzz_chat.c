/* fuzz_chat.c — arbitrary messages through gemfa_apply_chat_template and
 * gemfa_chat_tokenize (tiny model).  Input: a byte of options (bit 0
 * add_generation_prompt, bit 1 INJECTION_SAFE), then messages: a role byte
 * (system/user/assistant/model/an unknown role/a role read from the input),
 * a length byte, that many content bytes (length 0 with bit 6 set: NULL
 * content).  Properties: status is OK, INVALID_UTF8 or TEMPLATE, the same
 * for both calls; the text is valid UTF-8 starting with "<bos>"; tokenizing
 * it with special tokens gives chat_tokenize's ids (flags 0); with
 * INJECTION_SAFE there is exactly one <start_of_turn> and <end_of_turn> per
 * rendered turn, whatever the contents say. */
#include <string.h>

#include "fuzz_common.h"

#define MAX_MESSAGES 12

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const gemfa_model *m = fuzz_tiny_model(1);
    int add_prompt = data[0] & 1;
    unsigned flags = (data[0] & 2) ? GEMFA_CHAT_INJECTION_SAFE : 0;
    static const char *const roles[] = {"system", "user", "assistant", "model", "tool"};
    gemfa_message msgs[MAX_MESSAGES];
    char role_buf[MAX_MESSAGES][16];
    size_t n = 0, at = 1;
    while (at + 2 <= size && n < MAX_MESSAGES) {
        uint8_t r = data[at++], l = data[at++];
        if ((r & 7) < 5) {
            msgs[n].role = roles[r & 7];
        } else { /* a role from the input: up to 15 bytes */
            size_t rl = (r >> 3) & 15;
            if (rl > size - at)
                rl = size - at;
            memcpy(role_buf[n], data + at, rl);
            role_buf[n][rl] = '\0';
            at += rl;
            msgs[n].role = role_buf[n];
        }
        size_t cl = l < size - at ? l : size - at;
        msgs[n].content = (cl == 0 && (r & 0x40)) ? NULL : (const char *)data + at;
        msgs[n].content_len = cl;
        at += cl;
        n++;
    }

    size_t len = 0;
    gemfa_status st = gemfa_apply_chat_template(m, msgs, n, add_prompt, NULL, 0, &len);
    fuzz_check_status(st, "gemfa_apply_chat_template");
    size_t n_ids = 0;
    gemfa_status st2 = gemfa_chat_tokenize(m, msgs, n, add_prompt, flags, NULL, 0, &n_ids);
    fuzz_check_status(st2, "gemfa_chat_tokenize");
    if (st != GEMFA_ERR_BUFFER_TOO_SMALL) {
        FUZZ_CHECK(st == GEMFA_ERR_INVALID_UTF8 || st == GEMFA_ERR_TEMPLATE, "template: %s",
                   gemfa_status_name(st));
        FUZZ_CHECK(st2 == st, "chat_tokenize %s vs template %s", gemfa_status_name(st2),
                   gemfa_status_name(st));
        return 0;
    }
    FUZZ_CHECK(st2 == GEMFA_ERR_BUFFER_TOO_SMALL, "chat_tokenize query: %s",
               gemfa_status_name(st2));
    char *text = malloc(len + 1);
    size_t len2 = 0;
    st = gemfa_apply_chat_template(m, msgs, n, add_prompt, text, len + 1, &len2);
    FUZZ_CHECK(st == GEMFA_OK && len2 == len && text[len] == '\0', "render");
    FUZZ_CHECK(fuzz_utf8_valid(text, len), "rendered text is not UTF-8");
    FUZZ_CHECK(len >= 5 && !memcmp(text, "<bos>", 5), "no <bos>");
    int32_t *ids = malloc(n_ids * sizeof *ids);
    size_t n2 = 0;
    st = gemfa_chat_tokenize(m, msgs, n, add_prompt, flags, ids, n_ids, &n2);
    FUZZ_CHECK(st == GEMFA_OK && n2 == n_ids, "chat_tokenize fill");

    if (!flags) { /* HF: the rendered text tokenized with special tokens */
        size_t n3 = 0;
        int32_t *again = malloc((n_ids + 1) * sizeof *again);
        st = gemfa_tokenize(m, text, len, GEMFA_TOKENIZE_PARSE_SPECIAL, again, n_ids + 1, &n3);
        FUZZ_CHECK(st == GEMFA_OK && n3 == n_ids && !memcmp(again, ids, n3 * sizeof *ids),
                   "chat_tokenize != tokenize(render)");
        free(again);
    } else {
        int64_t sot = -1, eot = -1;
        gemfa_model_get(m, GEMFA_PROP_START_OF_TURN_ID, &sot);
        gemfa_model_get(m, GEMFA_PROP_END_OF_TURN_ID, &eot);
        size_t turns = n - (n > 0 && !strcmp(msgs[0].role, "system")), n_sot = 0, n_eot = 0;
        for (size_t i = 0; i < n_ids; i++) {
            n_sot += ids[i] == sot;
            n_eot += ids[i] == eot;
        }
        FUZZ_CHECK(n_sot == turns + (size_t)add_prompt && n_eot == turns,
                   "injection: %zu turns, %zu <start_of_turn>, %zu <end_of_turn>", turns, n_sot,
                   n_eot);
    }
    free(ids);
    free(text);
    return 0;
}
