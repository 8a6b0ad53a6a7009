/* fuzz_index.c — model.safetensors.index.json through gf_shard_set_open,
 * next to two small valid shards (a.safetensors: "x", "y"; b.safetensors:
 * "z").  On success every tensor the set holds must be found by name, and
 * every tensor the index names must be in the set. */
#include <string.h>

#include "fuzz_common.h"
#include "loader/safetensors.h"

static void write_shard(const char *name, const char *header, size_t data_bytes)
{
    size_t hl = strlen(header);
    uint8_t buf[512];
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    fuzz_write(name, buf, 8 + hl + data_bytes);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    write_shard("a.safetensors",
                "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"y\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}",
                16);
    write_shard("b.safetensors",
                "{\"__metadata__\":{\"format\":\"pt\"},"
                "\"z\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}",
                6);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_write("model.safetensors.index.json", data, size);
    gf_shard_set *set = NULL;
    gemfa_status st = gf_shard_set_open(fuzz_tmp_dir(), &set);
    fuzz_check_status(st, "gf_shard_set_open");
    if (st == GEMFA_OK) {
        FUZZ_CHECK(set->n_files >= 1 && set->n_files <= 2, "%zu files", set->n_files);
        for (size_t i = 0; i < set->n_tensors; i++)
            FUZZ_CHECK(gf_shard_set_find(set, set->sorted[i]->name) == set->sorted[i],
                       "lookup of '%s'", set->sorted[i]->name);
        FUZZ_CHECK(!gf_shard_set_find(set, "no such tensor"), "phantom tensor");
    } else {
        FUZZ_CHECK(set == NULL, "out set on failure");
    }
    gf_shard_set_free(set);
    return 0;
}
