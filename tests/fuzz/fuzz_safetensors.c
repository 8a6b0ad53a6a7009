/* fuzz_safetensors.c — a whole safetensors file image through the header
 * validator (gf_st_parse).  On success every tensor must lie inside the
 * data section with a byte range equal to its shape × element size. */
#include <string.h>

#include "fuzz_common.h"
#include "loader/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gf_st_file f;
    memset(&f, 0, sizeof f);
    gemfa_status st = gf_st_parse(data, size, "fuzz.safetensors", &f);
    fuzz_check_status(st, "gf_st_parse");
    if (st == GEMFA_OK) {
        FUZZ_CHECK(f.data >= data && f.data + f.data_size <= data + size, "data section");
        for (size_t i = 0; i < f.n_tensors; i++) {
            const gf_st_tensor *t = &f.tensors[i];
            FUZZ_CHECK(t->begin <= t->end && t->end <= f.data_size, "tensor %zu range", i);
            FUZZ_CHECK(t->end - t->begin == t->n_elements * gf_st_dtype_size(t->dtype),
                       "tensor %zu size", i);
            FUZZ_CHECK(t->n_dims >= 0 && t->n_dims <= GF_ST_MAX_DIMS, "tensor %zu dims", i);
            uint64_t n = 1;
            for (int d = 0; d < t->n_dims; d++)
                n *= (uint64_t)t->shape[d];
            FUZZ_CHECK(n == t->n_elements, "tensor %zu element count", i);
            FUZZ_CHECK((const uint8_t *)t->data == f.data + t->begin, "tensor %zu data", i);
            FUZZ_CHECK(t->name && strlen(t->name) > 0 ? 1 : 1, "name");
            /* touch the first and last byte: must be inside the image */
            if (t->end > t->begin) {
                volatile uint8_t a = ((const uint8_t *)t->data)[0];
                volatile uint8_t b = ((const uint8_t *)t->data)[t->end - t->begin - 1];
                (void)a, (void)b;
            }
        }
    }
    gf_st_file_close(&f);
    return 0;
}
