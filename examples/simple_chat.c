/* simple_chat.c — the smallest complete libgemfa program: load a model,
 * render one user message with the chat template, and stream the reply.
 *
 *   cc simple_chat.c $(pkg-config --cflags --libs gemfa) -o simple_chat
 *   ./simple_chat MODEL_DIR "سلام! حالت چطوره؟"
 */
#include <gemfa.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, gemfa_status st)
{
    fprintf(stderr, "%s: %s: %s\n", what, gemfa_status_name(st), gemfa_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR PROMPT\n", argv[0]);
        return 2;
    }
    gemfa_model *model = NULL;
    gemfa_context *ctx = NULL;
    gemfa_session *session = NULL;
    gemfa_sampler *sampler = NULL;
    gemfa_detok_stream *stream = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int rc = 1;
    gemfa_status st;

    if ((st = gemfa_model_load(argv[1], NULL, &model)) != GEMFA_OK)
        return fail("load", st);

    /* Render "<bos><start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n"
     * and tokenize it: first ask for the size, then fill the buffer. */
    gemfa_message msg = {"user", argv[2], GEMFA_NUL_TERMINATED};
    st = gemfa_chat_tokenize(model, &msg, 1, 1, 0, NULL, 0, &n_prompt);
    if (st == GEMFA_ERR_BUFFER_TOO_SMALL && (prompt = malloc(n_prompt * sizeof *prompt)))
        st = gemfa_chat_tokenize(model, &msg, 1, 1, 0, prompt, n_prompt, &n_prompt);
    if (st != GEMFA_OK) {
        fail("chat template", st);
        goto out;
    }

    /* Compute resources, one conversation, the checkpoint's sampling defaults. */
    if ((st = gemfa_context_new(model, NULL, &ctx)) != GEMFA_OK ||
        (st = gemfa_session_new(ctx, NULL, &session)) != GEMFA_OK ||
        (st = gemfa_sampler_new(model, &sampler)) != GEMFA_OK ||
        (st = gemfa_sampler_set_seed(sampler, 42)) != GEMFA_OK ||
        (st = gemfa_detok_stream_new(model, 0, &stream)) != GEMFA_OK) {
        fail("setup", st);
        goto out;
    }

    /* Decode the prompt, then: sample, stop at end of turn, print, decode. */
    const float *logits = NULL;
    if ((st = gemfa_decode(session, prompt, n_prompt, &logits)) != GEMFA_OK) {
        fail("decode", st);
        goto out;
    }
    int64_t n_vocab = 0;
    gemfa_model_get(model, GEMFA_PROP_VOCAB_SIZE, &n_vocab);
    for (int i = 0; i < 64; i++) {
        const int32_t *history;
        size_t n_history;
        int32_t id;
        gemfa_session_tokens(session, &history, &n_history);
        if ((st = gemfa_sample(sampler, logits, (size_t)n_vocab, history, n_history, &id)) != GEMFA_OK) {
            fail("sample", st);
            goto out;
        }
        if (gemfa_model_is_eog(model, id))
            break;
        const char *text;
        size_t len;
        if ((st = gemfa_detok_stream_feed(stream, id, &text, &len)) != GEMFA_OK) {
            fail("detokenize", st);
            goto out;
        }
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        if ((st = gemfa_decode(session, &id, 1, &logits)) != GEMFA_OK) {
            fail("decode", st);
            goto out;
        }
    }
    const char *tail;
    size_t tail_len;
    if (gemfa_detok_stream_flush(stream, &tail, &tail_len) == GEMFA_OK)
        fwrite(tail, 1, tail_len, stdout);
    printf("\n");
    rc = 0;
out:
    gemfa_detok_stream_free(stream);
    gemfa_sampler_free(sampler);
    gemfa_session_free(session);
    gemfa_context_free(ctx);
    gemfa_model_free(model);
    free(prompt);
    return rc;
}
