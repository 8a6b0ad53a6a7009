/* vec_neon.h — the runtime/vec.h helpers in NEON intrinsics (aarch64;
 * vec_neon.c).  gf_vec_for_level() hands them out for the ARM kernel
 * levels neon, dotprod and i8mm; NULL when not built for aarch64 or built
 * with -Dsimd=disabled. */
#ifndef GF_RUNTIME_VEC_NEON_H
#define GF_RUNTIME_VEC_NEON_H

#include "runtime/vec.h"

const gf_vec_ops *gf_vec_neon(void);

#endif
