/* stub.h — placeholder bodies for public functions whose area is not built
 * yet; each returns GEMFA_ERR_UNSUPPORTED with the function's name.
 * Remove an area's stubs when it lands. */
#ifndef GF_STUB_H
#define GF_STUB_H
#include "core/status.h"
#define GF_STUB(name) gf_error(GEMFA_ERR_UNSUPPORTED, "%s is not implemented yet", name)
#endif
