/* fuzz_json_schema.c — JSON Schema compilation for the JSON constraint
 * (gf_schema_compile) and the byte machine it builds.  The input is a
 * schema, optionally followed by a NUL and a text: the text is stepped
 * byte by byte.  Checks: a failed compile leaves nothing behind and names
 * an expected status; a compiled machine never crashes, and every byte it
 * accepts keeps the state inside its bounds. */
#include <string.h>

#include "constrain/jsm.h"
#include "constrain/schema.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t schema_len = nul ? (size_t)(nul - data) : size;
    gf_jsm m;
    gemfa_status st = gf_schema_compile((const char *)data, schema_len, &m);
    fuzz_check_status(st, "gf_schema_compile");
    if (st != GEMFA_OK) {
        FUZZ_CHECK(st == GEMFA_ERR_FORMAT || st == GEMFA_ERR_INVALID_ARGUMENT ||
                       st == GEMFA_ERR_UNSUPPORTED || st == GEMFA_ERR_OUT_OF_MEMORY,
                   "status %s", gemfa_status_name(st));
        FUZZ_CHECK(m.nodes == NULL && m.lit == NULL && m.props == NULL, "arrays on failure");
        return 0;
    }
    FUZZ_CHECK(m.root < m.n_nodes, "root %u of %zu nodes", m.root, m.n_nodes);
    gf_jstate s;
    gf_jsm_start(&m, &s);
    for (size_t i = schema_len + 1; nul && i < size; i++) {
        if (gf_jsm_step(&m, &s, data[i]) != GF_STEP_OK)
            break;
        FUZZ_CHECK(s.depth >= 1 && s.depth <= GF_JSM_MAX_DEPTH, "depth %u", s.depth);
        FUZZ_CHECK(s.f[s.depth - 1].ws <= GF_JSM_MAX_WS, "whitespace run");
        (void)gf_jsm_complete(&m, &s);
    }
    gf_jsm_free(&m);
    return 0;
}
