/* cost.c — see cost.h. */
#include "runtime/cost.h"

int64_t gf_matrix_bytes(const gf_matrix *w)
{
    if (!w->data)
        return 0;
    int64_t b = w->rows * (int64_t)gf_matrix_row_bytes(w);
    b += (int64_t)gf_matrix_scales_bytes(w);
    return b;
}

void gf_decode_bytes_at(const gemfa_model *m, int64_t pos, gf_decode_bytes *out)
{
    const gf_hparams *hp = &m->hp;
    int64_t w = gf_matrix_bytes(&m->per_layer_model_proj) + gf_matrix_bytes(&m->lm_head);
    for (int k = 0; k < hp->altup_num_inputs - 1; k++)
        w += gf_matrix_bytes(&m->altup_proj[k]) + gf_matrix_bytes(&m->altup_unembed[k]);
    int64_t kv = 0;
    const int64_t per_key = 2 * (int64_t)hp->n_kv_heads * hp->head_dim * (int64_t)sizeof(float);
    for (int l = 0; l < hp->n_layers; l++) {
        const gf_layer *L = &m->layers[l];
        const gf_matrix *mats[] = {&L->q_proj, &L->k_proj, &L->v_proj, &L->o_proj,
                                   &L->gate_proj, &L->up_proj, &L->down_proj, &L->altup_router,
                                   &L->laurel_left, &L->laurel_right, &L->ple_gate, &L->ple_proj};
        for (unsigned i = 0; i < sizeof mats / sizeof mats[0]; i++)
            if (hp->kv_source[l] == l || (mats[i] != &L->k_proj && mats[i] != &L->v_proj))
                w += gf_matrix_bytes(mats[i]);
        int64_t keys = pos + 1;
        if (hp->is_sliding[l] && keys > hp->sliding_window)
            keys = hp->sliding_window;
        kv += keys * per_key;
    }
    const int64_t gathers = (int64_t)gf_matrix_row_bytes(&m->embed_tokens) +
                            (int64_t)gf_matrix_row_bytes(&m->embed_per_layer);
    out->weights = w;
    out->gathers = gathers;
    out->kv = kv;
    out->total = w + gathers + kv;
}
