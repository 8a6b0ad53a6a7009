/* q8_layout.c — plain rows <-> the interleaved Q8 layout.  Copies go by
 * 4-byte column quads, the unit the layout keeps together. */
#include "loader/q8_layout.h"

#include <string.h>

void gf_q8_put_row(int8_t *data, uint16_t *scales, int64_t rows, int64_t cols, int64_t r,
                   int64_t c0, int64_t n, const int8_t *q, const uint16_t *s)
{
    const int64_t h = gf_q8_group_rows(rows, r - r % GF_Q8_GROUP);
    int8_t *dst = data + gf_q8_index(rows, cols, r, c0);
    for (int64_t c = 0; c < n; c += 4)
        memcpy(dst + (c / 4) * 4 * h, q + c, 4);
    uint16_t *ds = scales + gf_q8_scale_index(rows, cols, r, c0 / GF_Q8_BLOCK);
    for (int64_t b = 0; b < n / GF_Q8_BLOCK; b++)
        ds[b * h] = s[b];
}

void gf_q8_get_row(const gf_matrix *W, int64_t r, int8_t *q, uint16_t *s)
{
    const gf_q8_row row = gf_q8_row_of(W, r);
    if (q)
        for (int64_t c = 0; c < W->cols; c += 4)
            memcpy(q + c, row.q + (c / 4) * 4 * row.h, 4);
    if (s)
        for (int64_t b = 0; b < W->cols / GF_Q8_BLOCK; b++)
            s[b] = gf_q8_row_scale(row, b);
}

void gf_q8_interleave(const int8_t *q, const uint16_t *s, int64_t rows, int64_t cols,
                      int8_t *dst, uint16_t *dst_scales)
{
    const int64_t nb = cols / GF_Q8_BLOCK;
    for (int64_t r = 0; r < rows; r++)
        gf_q8_put_row(dst, dst_scales, rows, cols, r, 0, cols, q + r * cols, s + r * nb);
}
