/* cmd_info.c — `gemfa info`: load a model directory and describe it, as
 * text or (--json) as one JSON object.  Uses only the public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_json.h"
#include "commands.h"

static const char usage[] =
    "usage: gemfa info [-m DIR] [--json] [--weights TYPE] [-t THREADS]\n"
    "\n"
    "Loads a Gemma 3n checkpoint directory and prints its shape: layers and their\n"
    "attention types, KV-cache sharing, parameter counts, bytes by dtype, special ids.\n"
    "\n"
    "common options:\n" CLI_COMMON_HELP;

static const char *weight_type_name(int64_t t)
{
    switch (t) {
    case GEMFA_WEIGHTS_AUTO: return "auto";
    case GEMFA_WEIGHTS_F32: return "f32";
    case GEMFA_WEIGHTS_F16: return "f16";
    case GEMFA_WEIGHTS_BF16: return "bf16";
    case GEMFA_WEIGHTS_INT8: return "int8";
    }
    return "?";
}

static int64_t prop(const gemfa_model *m, gemfa_model_prop p)
{
    int64_t v = 0;
    gemfa_model_get(m, p, &v);
    return v;
}

typedef struct layer_info {
    gemfa_layer_type type;
    int kv_source;
    int64_t ffn;
    float sparsity;
    int base; /* checkpoint layer (MatFormer sub-models skip some) */
} layer_info;

/* The checkpoint layers a MatFormer sub-model skips: those no layer maps to. */
static void print_skipped(FILE *f, const gemfa_model *m, const layer_info *li, int n_layers,
                          const char *sep)
{
    int k = 0, first = 1;
    for (int b = 0; b < (int)prop(m, GEMFA_PROP_BASE_LAYERS); b++) {
        if (k < n_layers && li[k].base == b) {
            k++;
            continue;
        }
        fprintf(f, "%s%d", first ? "" : sep, b);
        first = 0;
    }
}

static const struct {
    const char *key;
    gemfa_model_prop prop;
} int_props[] = {
    {"n_layers", GEMFA_PROP_N_LAYERS},
    {"hidden_size", GEMFA_PROP_HIDDEN_SIZE},
    {"vocab_size", GEMFA_PROP_VOCAB_SIZE},
    {"vocab_size_per_layer_input", GEMFA_PROP_VOCAB_SIZE_PER_LAYER_INPUT},
    {"tokenizer_size", GEMFA_PROP_TOKENIZER_SIZE},
    {"context_length", GEMFA_PROP_CONTEXT_LENGTH},
    {"n_heads", GEMFA_PROP_N_HEADS},
    {"n_kv_heads", GEMFA_PROP_N_KV_HEADS},
    {"head_dim", GEMFA_PROP_HEAD_DIM},
    {"sliding_window", GEMFA_PROP_SLIDING_WINDOW},
    {"n_kv_shared_layers", GEMFA_PROP_N_KV_SHARED_LAYERS},
    {"per_layer_input_size", GEMFA_PROP_PER_LAYER_INPUT_SIZE},
    {"n_params", GEMFA_PROP_N_PARAMS},
    {"n_params_ple", GEMFA_PROP_N_PARAMS_PLE},
    {"weight_bytes", GEMFA_PROP_WEIGHT_BYTES},
};

static const struct {
    const char *key;
    gemfa_model_prop prop;
} id_props[] = {
    {"bos", GEMFA_PROP_BOS_ID},
    {"eos", GEMFA_PROP_EOS_ID},
    {"pad", GEMFA_PROP_PAD_ID},
    {"unk", GEMFA_PROP_UNK_ID},
    {"start_of_turn", GEMFA_PROP_START_OF_TURN_ID},
    {"end_of_turn", GEMFA_PROP_END_OF_TURN_ID},
};

static const struct {
    const char *key;
    gemfa_model_prop prop;
} byte_props[] = {
    {"f32", GEMFA_PROP_STORED_BYTES_F32},
    {"f16", GEMFA_PROP_STORED_BYTES_F16},
    {"bf16", GEMFA_PROP_STORED_BYTES_BF16},
    {"int8", GEMFA_PROP_STORED_BYTES_INT8},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The shortest decimal that reads back as the same float (0.95, not
 * 0.949999988). */
static void print_float(FILE *f, float v)
{
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    fputs(buf, f);
}

static void print_json(FILE *f, const char *dir, const gemfa_model *m, const layer_info *li,
                       int n_layers, const int32_t *eog, size_t n_eog, double seconds)
{
    fputs("{\"path\": ", f);
    cli_json_string(f, dir, strlen(dir));
    for (size_t i = 0; i < COUNT(int_props); i++)
        fprintf(f, ", \"%s\": %lld", int_props[i].key, (long long)prop(m, int_props[i].prop));
    fputs(", \"layer_types\": [", f);
    for (int l = 0; l < n_layers; l++)
        fprintf(f, "%s\"%s\"", l ? ", " : "", li[l].type == GEMFA_LAYER_SLIDING ? "sliding" : "full");
    fputs("], \"kv_source\": [", f);
    for (int l = 0; l < n_layers; l++)
        fprintf(f, "%s%d", l ? ", " : "", li[l].kv_source);
    fputs("], \"ffn_width\": [", f);
    for (int l = 0; l < n_layers; l++)
        fprintf(f, "%s%lld", l ? ", " : "", (long long)li[l].ffn);
    fputs("], \"activation_sparsity\": [", f);
    for (int l = 0; l < n_layers; l++) {
        fputs(l ? ", " : "", f);
        print_float(f, li[l].sparsity);
    }
    fputs("], \"matformer\": ", f);
    const char *spec = gemfa_model_matformer(m);
    if (spec)
        cli_json_string(f, spec, strlen(spec));
    else
        fputs("null", f);
    fprintf(f, ", \"base_layers\": %lld, \"skipped_layers\": [",
            (long long)prop(m, GEMFA_PROP_BASE_LAYERS));
    print_skipped(f, m, li, n_layers, ", ");
    fputs("], \"bytes_by_dtype\": {", f);
    int first = 1;
    for (size_t i = 0; i < COUNT(byte_props); i++) {
        int64_t b = prop(m, byte_props[i].prop);
        if (b) {
            fprintf(f, "%s\"%s\": %lld", first ? "" : ", ", byte_props[i].key, (long long)b);
            first = 0;
        }
    }
    fprintf(f, "}, \"weight_type\": \"%s\"", weight_type_name(prop(m, GEMFA_PROP_WEIGHT_TYPE)));
    fprintf(f, ", \"lora\": {\"adapters\": %lld, \"matrices\": %lld}",
            (long long)prop(m, GEMFA_PROP_LORA_ADAPTERS),
            (long long)prop(m, GEMFA_PROP_LORA_MATRICES));
    fputs(", \"eog_ids\": ", f);
    cli_json_ids(f, eog, n_eog);
    fputs(", \"special_ids\": {", f);
    for (size_t i = 0; i < COUNT(id_props); i++)
        fprintf(f, "%s\"%s\": %lld", i ? ", " : "", id_props[i].key,
                (long long)prop(m, id_props[i].prop));
    fprintf(f, "}, \"has_tokenizer\": %s, \"load_seconds\": %.6f}\n",
            prop(m, GEMFA_PROP_HAS_TOKENIZER) ? "true" : "false", seconds);
}

static void print_text(FILE *f, const char *dir, const gemfa_model *m, const layer_info *li,
                       int n_layers, const int32_t *eog, size_t n_eog, double seconds)
{
    int n_full = 0;
    for (int l = 0; l < n_layers; l++)
        n_full += li[l].type == GEMFA_LAYER_FULL;
    fprintf(f, "model          %s\n", dir);
    fprintf(f, "layers         %d (%d sliding, %d full; window %lld)\n", n_layers,
            n_layers - n_full, n_full, (long long)prop(m, GEMFA_PROP_SLIDING_WINDOW));
    fprintf(f, "hidden size    %lld, %lld heads / %lld KV heads of %lld\n",
            (long long)prop(m, GEMFA_PROP_HIDDEN_SIZE), (long long)prop(m, GEMFA_PROP_N_HEADS),
            (long long)prop(m, GEMFA_PROP_N_KV_HEADS), (long long)prop(m, GEMFA_PROP_HEAD_DIM));
    fprintf(f, "vocabulary     %lld logits, %lld per-layer rows, %lld tokenizer pieces\n",
            (long long)prop(m, GEMFA_PROP_VOCAB_SIZE),
            (long long)prop(m, GEMFA_PROP_VOCAB_SIZE_PER_LAYER_INPUT),
            (long long)prop(m, GEMFA_PROP_TOKENIZER_SIZE));
    fprintf(f, "context        %lld tokens\n", (long long)prop(m, GEMFA_PROP_CONTEXT_LENGTH));
    fprintf(f, "per-layer in   %lld per layer\n", (long long)prop(m, GEMFA_PROP_PER_LAYER_INPUT_SIZE));
    fprintf(f, "KV sharing     %lld layers:", (long long)prop(m, GEMFA_PROP_N_KV_SHARED_LAYERS));
    for (int l = 0; l < n_layers; l++)
        if (li[l].kv_source != l)
            fprintf(f, " %d->%d", l, li[l].kv_source);
    fputc('\n', f);
    fputs("layer types    ", f);
    for (int l = 0; l < n_layers; l++)
        fputc(li[l].type == GEMFA_LAYER_SLIDING ? 's' : 'F', f);
    fputs("   (s sliding, F full)\nFFN widths     ", f);
    for (int l = 0; l < n_layers; l++)
        if (l == 0 || li[l].ffn != li[l - 1].ffn)
            fprintf(f, "%s%lld from layer %d", l ? ", " : "", (long long)li[l].ffn, l);
    if (gemfa_model_matformer(m)) {
        fprintf(f, "\nmatformer      %s: %d of %lld layers, skipped ", gemfa_model_matformer(m),
                n_layers, (long long)prop(m, GEMFA_PROP_BASE_LAYERS));
        if (prop(m, GEMFA_PROP_SKIPPED_LAYERS))
            print_skipped(f, m, li, n_layers, " ");
        else
            fputs("none", f);
    }
    fputs("\nsparse layers  ", f);
    int any = 0;
    for (int l = 0; l < n_layers; l++)
        if (li[l].sparsity > 0) {
            fprintf(f, "%s%d", any ? " " : "", l);
            any = 1;
        }
    fputs(any ? "\n" : "none\n", f);
    fprintf(f, "parameters     %lld (per-layer embeddings %lld)\n",
            (long long)prop(m, GEMFA_PROP_N_PARAMS), (long long)prop(m, GEMFA_PROP_N_PARAMS_PLE));
    fputs("stored bytes  ", f);
    for (size_t i = 0; i < COUNT(byte_props); i++) {
        int64_t b = prop(m, byte_props[i].prop);
        if (b)
            fprintf(f, " %s %lld", byte_props[i].key, (long long)b);
    }
    fprintf(f, "\nweights        %s, %lld bytes as used\n",
            weight_type_name(prop(m, GEMFA_PROP_WEIGHT_TYPE)),
            (long long)prop(m, GEMFA_PROP_WEIGHT_BYTES));
    if (prop(m, GEMFA_PROP_LORA_ADAPTERS))
        fprintf(f, "LoRA           %lld adapters merged into %lld matrices\n",
                (long long)prop(m, GEMFA_PROP_LORA_ADAPTERS),
                (long long)prop(m, GEMFA_PROP_LORA_MATRICES));
    fputs("stop ids      ", f);
    for (size_t i = 0; i < n_eog; i++)
        fprintf(f, " %d", (int)eog[i]);
    fputs(n_eog ? "\nspecial ids   " : " none\nspecial ids   ", f);
    for (size_t i = 0; i < COUNT(id_props); i++)
        fprintf(f, " %s %lld", id_props[i].key, (long long)prop(m, id_props[i].prop));
    fprintf(f, "\ntokenizer      %s\n", prop(m, GEMFA_PROP_HAS_TOKENIZER) ? "yes" : "no");
    fprintf(f, "loaded in      %.3f s\n", seconds);
}

int cmd_info(int argc, char **argv)
{
    cli_common c = {0};
    for (int i = 1; i < argc;) {
        int r = cli_common_option(&c, argc, argv, &i);
        if (r < 0)
            return CLI_USAGE;
        if (r == 0)
            return cli_usage_error("info", "unexpected argument '%s'", argv[i]);
    }
    if (cli_handle_help(&c, usage))
        return CLI_OK;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gemfa_model *m = NULL;
    if (cli_load_model(&c, 0, &m) != CLI_OK)
        return CLI_ERROR;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;

    int rc = CLI_ERROR;
    int n_layers = (int)prop(m, GEMFA_PROP_N_LAYERS);
    layer_info *li = calloc(n_layers > 0 ? (size_t)n_layers : 1, sizeof *li);
    int32_t *eog = NULL;
    size_t n_eog = 0;
    gemfa_status st = li ? GEMFA_OK : GEMFA_ERR_OUT_OF_MEMORY;
    for (int l = 0; l < n_layers && st == GEMFA_OK; l++)
        if ((st = gemfa_model_layer(m, l, &li[l].type, &li[l].kv_source, &li[l].ffn,
                                    &li[l].sparsity)) == GEMFA_OK)
            st = gemfa_model_base_layer(m, l, &li[l].base);
    if (st == GEMFA_OK) {
        gemfa_model_eog_ids(m, NULL, 0, &n_eog); /* size query */
        eog = calloc(n_eog ? n_eog : 1, sizeof *eog);
        st = eog ? gemfa_model_eog_ids(m, eog, n_eog, &n_eog) : GEMFA_ERR_OUT_OF_MEMORY;
    }
    if (st != GEMFA_OK) {
        cli_report("info", st);
    } else {
        const char *dir = cli_model_dir(&c);
        if (c.json)
            print_json(stdout, dir, m, li, n_layers, eog, n_eog, seconds);
        else
            print_text(stdout, dir, m, li, n_layers, eog, n_eog, seconds);
        rc = fflush(stdout) == 0 ? CLI_OK : CLI_ERROR;
    }
    free(li);
    free(eog);
    gemfa_model_free(m);
    return rc;
}
