/* convert.h — scalar f32 <-> bf16 / f16 conversions (IEEE round to nearest
 * even; NaN stays NaN, infinities and subnormals are kept exactly where the
 * target format can hold them). */
#ifndef GF_KERNELS_CONVERT_H
#define GF_KERNELS_CONVERT_H

#include <stdint.h>

float gf_bf16_to_f32(uint16_t h);
float gf_f16_to_f32(uint16_t h);
uint16_t gf_f32_to_bf16(float f); /* round to nearest even */
uint16_t gf_f32_to_f16(float f);  /* round to nearest even; overflow gives inf */

#endif
