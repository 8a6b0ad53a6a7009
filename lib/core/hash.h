/* hash.h — checksums and hashes for data libgemfa writes and reads back:
 * CRC32C (Castagnoli) for saved session states, and a 64-bit FNV-1a hash
 * for fingerprints (identification, not security). */
#ifndef GF_HASH_H
#define GF_HASH_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of data[0..n) continuing from `crc` (0 to start): reflected
 * polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF, as in
 * iSCSI (RFC 3720) and ext4; crc32c("123456789") = 0xE3069283. */
uint32_t gf_crc32c(uint32_t crc, const void *data, size_t n);

/* FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3). */
#define GF_FNV64_INIT UINT64_C(0xcbf29ce484222325)
uint64_t gf_fnv64(uint64_t h, const void *data, size_t n);
/* Mixes the bits of h (splitmix64's finaliser) so that every input bit
 * affects every output bit. */
uint64_t gf_hash_finish(uint64_t h);

#endif
