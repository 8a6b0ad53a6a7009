/* gemm_amx.c — prompt batches of Q8 and Q4 weights on the AMX-INT8 tile
 * unit (Intel Sapphire Rapids and later; see gemm.h).
 *
 * One TDPBSSD multiplies a 16-token x 32-byte activation tile (one k block
 * of quantized activations, signed) by an 8 x 64-byte weight tile (the
 * same k block of a 16-row group) into 16 x 16 int32 sums: exactly the
 * block sums of the scalar twin (kernels_scalar.c rows_q8/rows_q4), no
 * -128 correction as vpdpbusd's unsigned operand needs.  The Q8 r16 layout
 * (q8_format.h) of a full group already is the weight tile: byte
 * (k/4)*64 + r*4 + k%4, one block 512 contiguous bytes.  Short groups and
 * Q4 groups are copied / unpacked per k chunk into a zero-padded slab.
 *
 * Each k block ends with its own scales, so every block's C tile is
 * stored and folded into f32 accumulators as the scalar twin does:
 * acc = fma((float)isum, d_w * d_x, acc), block after block, starting from
 * +0: bit for bit the same results.  A job is one output tile (16 tokens x
 * 16 rows) over a k chunk, its accumulators in registers; blocks rotate
 * over four C tiles.  The fold (cvt, mul, fma per 16 outputs) is the
 * inherent price of per-block scales: on the Xeon this was measured on,
 * tile instructions and AVX-512 work hardly overlapped (TSC cycles: a
 * TDPBSSD of 32 k ~12, a tile store ~11, a fold ~18, all of a block's
 * steps ~56; tests/kernels/bench_amx_ops.c, docs/performance.md). */
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <string.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "kernels/q4_format.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define TARGET_AMX \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,amx-tile,amx-int8")))
#define ALWAYS static inline __attribute__((always_inline))

#define TT 16               /* tokens per tile */
#define KCA GF_AMX_KC       /* k per chunk: a slab is 16 x KCA bytes per group */
#define PACK_COLS 1024      /* columns per quantizer call when packing */

/* ---- can this process use the tiles? ---- */

static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static gf_amx_state amx_state = GF_AMX_ABSENT;

static void amx_probe(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
        return; /* no AMX-TILE / AMX-INT8 */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
        return; /* no OSXSAVE: cannot ask XCR0 */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) {
        amx_state = GF_AMX_REFUSED; /* the OS does not save tile state */
        return;
    }
#if defined(__linux__)
    /* Linux 5.16+: tile data is off until the process asks for it
     * (ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 18); process-wide. */
    unsigned long mask = 0;
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0 &&
        syscall(SYS_arch_prctl, 0x1022 /* ARCH_GET_XCOMP_PERM */, &mask) == 0 &&
        (mask & (1ul << 18)))
        amx_state = GF_AMX_READY;
    else
        amx_state = GF_AMX_REFUSED;
#else
    amx_state = GF_AMX_REFUSED; /* no known way to ask: stay on VNNI */
#endif
}

gf_amx_state gf_amx_probe(void)
{
    pthread_once(&amx_once, amx_probe);
    return amx_state;
}

/* ---- tiles: C 0-3, A 4-5, B 6-7 (see run_tile) ---- */

typedef struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

/* const (in memory, never written): ldtilecfg's asm names only 8 bytes */
static const amx_cfg tile_cfg __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 32, 32, 64, 64}, {16, 16, 16, 16, 16, 16, 8, 8}};

/* Activations: A[tile][block][16 tokens][32] int8 and D[tile][block][16]
 * scales, so one block of a token tile is 512 contiguous bytes.  The
 * tokens of a 32-token pack block (gf_gemm_pack_x) are two tiles; the
 * sizes are those of GF_GEMM_Q8 (gf_gemm_x_bytes). */
void gf_amx_pack_x(gf_gemm_x *px, const float *x, int64_t tb)
{
    const int64_t K = px->cols, nb = K / 32;
    const gf_quant_fn quantize = gf_kernels()->quantize_q8;
    int8_t *xa = (int8_t *)px->xq;
    float *xd = (float *)px->xd;
    /* a token's row quantized 1024 columns per call, then its blocks
     * moved to their tiles */
    for (int64_t t = tb * GF_GEMM_NR; t < (tb + 1) * GF_GEMM_NR; t++) {
        int8_t *a = xa + (t / TT) * nb * 512 + (t % TT) * 32;
        float *d = xd + (t / TT) * nb * TT + t % TT;
        if (t >= px->n_tokens) {
            for (int64_t b = 0; b < nb; b++) {
                memset(a + b * 512, 0, 32);
                d[b * TT] = 0;
            }
            continue;
        }
        int8_t q[PACK_COLS];
        float dq[PACK_COLS / 32];
        int32_t corr[PACK_COLS / 32 * 8];
        for (int64_t c0 = 0; c0 < K; c0 += PACK_COLS) {
            const int64_t n = K - c0 < PACK_COLS ? K - c0 : PACK_COLS;
            quantize(x + t * K + c0, n, q, dq, corr);
            for (int64_t b = 0; b < n / 32; b++) {
                memcpy(a + (c0 / 32 + b) * 512, q + b * 32, 32);
                d[(c0 / 32 + b) * TT] = dq[b];
            }
        }
    }
}

/* ---- weight slabs ---- */

/* Columns [k0, k0 + kc) of the group at g0 (h rows) as weight tiles with
 * 16 rows (rows h.. zero): Q8 copied, Q4 unpacked (u - 8, q4_format.h: a
 * code octet's 4h bytes hold quad 2j in the low nibbles, 2j + 1 in the
 * high ones). */
TARGET static void make_slab(const gf_matrix *W, int64_t g0, int64_t h, int64_t k0, int64_t kc,
                             int8_t *out)
{
    const __mmask64 m = h == 16 ? ~0ull : (1ull << (4 * h)) - 1;
    if (W->dtype == GF_DTYPE_Q8) {
        const int8_t *src = (const int8_t *)W->data + g0 * W->cols + k0 * h;
        for (int64_t j = 0; j < kc / 4; j++)
            _mm512_store_si512(out + j * 64, _mm512_maskz_loadu_epi8(m, src + j * 4 * h));
        return;
    }
    const uint8_t *src = (const uint8_t *)W->data + (g0 * W->cols + k0 * h) / 2;
    const __m512i lo4 = _mm512_set1_epi8(15), eight = _mm512_set1_epi8(8);
    for (int64_t j = 0; j < kc / 8; j++) {
        __m512i v = _mm512_maskz_loadu_epi8(m, src + j * 4 * h);
        __m512i a = _mm512_sub_epi8(_mm512_and_si512(v, lo4), eight);
        __m512i b = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), lo4), eight);
        _mm512_store_si512(out + (2 * j) * 64, _mm512_maskz_mov_epi8(m, a));
        _mm512_store_si512(out + (2 * j + 1) * 64, _mm512_maskz_mov_epi8(m, b));
    }
}

/* ---- the block loop ---- */

/* One output tile (16 tokens x 16 rows) over the blocks of a k chunk,
 * its f32 accumulators in 16 registers.  Each block is one TDPBSSD into a
 * C tile; tile registers are not renamed, so blocks rotate over C tiles
 * 0-3 (A 4-5, B 6-7): block b + 4 is issued before block b is folded. */
typedef struct amx_tile_job {
    const int8_t *a;   /* the token tile at the chunk's first block */
    const float *d;    /* its scales, same block */
    const int8_t *b;   /* the group's weight tiles at the chunk's first block */
    const uint16_t *s; /* the group's scales at the chunk's first block */
    int64_t h;         /* rows of the group */
    int nb;            /* blocks in this chunk */
    int fresh;         /* first chunk: accumulators start at +0 */
    float *acc;        /* [16 tokens][16 rows] between chunks */
    int32_t *cbuf;     /* 4 x [16][16] int32 */
} amx_tile_job;

/* (tile numbers are pasted into the asm: literals) */
#define ISSUE(C, A, B, J, bk)                                                         \
    do {                                                                              \
        _tile_loadd(A, (J)->a + (bk) * 512, 32);                                      \
        _tile_loadd(B, (J)->b + (bk) * 512, 64);                                      \
        _tile_zero(C);                                                                \
        _tile_dpbssd(C, A, B);                                                        \
    } while (0)

#define FOLD(c, bk)                                                                  \
    do {                                                                              \
        const __m512 dw = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(hm, j->s + (bk) * j->h)); \
        const float *dx = j->d + (bk) * TT;                                           \
        for (int i = 0; i < TT; i++)                                                  \
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512((c) + i * 16)), \
                                     _mm512_mul_ps(dw, _mm512_set1_ps(dx[i])), acc[i]); \
    } while (0)

#define PF(bk)                                                                        \
    do {                                                                              \
        if ((bk) < nb)                                                                \
            for (int l = 0; l < 8; l++) {                                             \
                _mm_prefetch((const char *)(j->a + (bk) * 512 + l * 64), _MM_HINT_T0); \
                _mm_prefetch((const char *)(j->b + (bk) * 512 + l * 64), _MM_HINT_T0); \
            }                                                                         \
    } while (0)

TARGET_AMX static void run_tile(const amx_tile_job *j)
{
    const __mmask16 hm = (__mmask16)((1u << j->h) - 1);
    int32_t *c0 = j->cbuf, *c1 = j->cbuf + 256;
    __m512 acc[TT];
    for (int i = 0; i < TT; i++)
        acc[i] = j->fresh ? _mm512_setzero_ps() : _mm512_load_ps(j->acc + i * 16);
    int32_t *c2 = j->cbuf + 512, *c3 = j->cbuf + 768;
    const int nb = j->nb;
    ISSUE(0, 4, 6, j, 0);
    if (nb > 1)
        ISSUE(1, 5, 7, j, 1);
    if (nb > 2)
        ISSUE(2, 4, 6, j, 2);
    if (nb > 3)
        ISSUE(3, 5, 7, j, 3);
    for (int bk = 0; bk < nb; bk += 4) {
        _tile_stored(0, c0, 64);
        if (bk + 4 < nb)
            ISSUE(0, 4, 6, j, bk + 4);
        PF(bk + 2);
        FOLD(c0, bk);
        if (bk + 1 >= nb)
            break;
        _tile_stored(1, c1, 64);
        if (bk + 5 < nb)
            ISSUE(1, 5, 7, j, bk + 5);
        PF(bk + 1 + 2);
        FOLD(c1, bk + 1);
        if (bk + 2 >= nb)
            break;
        _tile_stored(2, c2, 64);
        if (bk + 6 < nb)
            ISSUE(2, 4, 6, j, bk + 6);
        PF(bk + 2 + 2);
        FOLD(c2, bk + 2);
        if (bk + 3 >= nb)
            break;
        _tile_stored(3, c3, 64);
        if (bk + 7 < nb)
            ISSUE(3, 5, 7, j, bk + 7);
        PF(bk + 3 + 2);
        FOLD(c3, bk + 3);
    }
    for (int i = 0; i < TT; i++)
        _mm512_store_ps(j->acc + i * 16, acc[i]);
}

#define MAX_GROUPS (GF_AMX_CHUNK_ROWS / 16)

size_t gf_amx_thread_bytes(int64_t n_tokens, int64_t chunk_rows)
{
    int64_t n_pad = (n_tokens + GF_GEMM_NR - 1) / GF_GEMM_NR * GF_GEMM_NR;
    int64_t r_pad = (chunk_rows + 15) / 16 * 16;
    return (size_t)(r_pad * n_pad) * 4 + (size_t)MAX_GROUPS * 16 * KCA + 4 * 1024 + 128;
}

/* Rows [r0, r1) (r0 at a group start, at most GF_AMX_CHUNK_ROWS) for all
 * tokens.  Per k chunk, every token tile runs over the chunk's groups: its
 * activations (16 x KCA bytes) stay in L1 across the groups, whose weights
 * (16 x KCA bytes each) come in two blocks ahead of use (prefetches).
 * Accumulators acc[group][token tile][16][16] keep the sums between
 * chunks, then go into y[token][row]: no transpose. */
TARGET_AMX void gf_amx_rows(const gf_matrix *W, const gf_gemm_x *px, int64_t r0, int64_t r1,
                            float *y, void *scratch)
{
    if (r1 - r0 > GF_AMX_CHUNK_ROWS) { /* (linear_batch.c never asks for more) */
        for (int64_t r = r0; r < r1; r += GF_AMX_CHUNK_ROWS)
            gf_amx_rows(W, px, r, r1 - r < GF_AMX_CHUNK_ROWS ? r1 : r + GF_AMX_CHUNK_ROWS, y, scratch);
        return;
    }
    const int64_t K = W->cols, nbk = K / 32, n = px->n_tokens;
    const int64_t n_groups = (r1 - r0 + 15) / 16, n_tiles = (n + TT - 1) / TT;
    float *acc = scratch;
    int8_t *slab = (int8_t *)(acc + n_groups * n_tiles * 256);
    int32_t *cbuf = (int32_t *)(slab + MAX_GROUPS * 16 * KCA);
    const int8_t *xa = (const int8_t *)px->xq;
    const int8_t *wb[MAX_GROUPS];
    const uint16_t *ws[MAX_GROUPS];
    int64_t wh[MAX_GROUPS];
    _tile_loadconfig(&tile_cfg);
    for (int64_t k0 = 0; k0 < K; k0 += KCA) {
        const int64_t kc = K - k0 < KCA ? K - k0 : KCA, kb0 = k0 / 32;
        for (int64_t g = 0; g < n_groups; g++) {
            const int64_t g0 = r0 + g * 16;
            wh[g] = gf_q8_group_rows(W->rows, g0);
            ws[g] = W->scales + g0 * nbk + kb0 * wh[g];
            if (W->dtype == GF_DTYPE_Q8 && wh[g] == 16) {
                wb[g] = (const int8_t *)W->data + g0 * K + k0 * 16; /* in place */
            } else {
                make_slab(W, g0, wh[g], k0, kc, slab + g * 16 * KCA);
                wb[g] = slab + g * 16 * KCA;
            }
        }
        __asm__ volatile("" ::: "memory"); /* the slabs before the tile loads */
        for (int64_t tt = 0; tt < n_tiles; tt++)
            for (int64_t g = 0; g < n_groups; g++) {
                const amx_tile_job j = {xa + (tt * nbk + kb0) * 512, px->xd + (tt * nbk + kb0) * TT,
                                        wb[g], ws[g], wh[g], (int)(kc / 32), k0 == 0,
                                        acc + (g * n_tiles + tt) * 256, cbuf};
                run_tile(&j);
            }
    }
    _tile_release();
    /* token by token: a token's groups are adjacent in y (one page).  An
     * output of 8 MB or more (an FFN's gate and up: 16 MB at 256 tokens)
     * goes past the caches anyway: its full lines are streamed, no read
     * for ownership (int8 prompt of 512 tokens +2-7 %, docs/performance.md) */
    const int stream = W->rows * n * 4 >= ((int64_t)8 << 20);
    for (int64_t t = 0; t < n; t++)
        for (int64_t g = 0; g < n_groups; g++) {
            const int64_t g0 = r0 + g * 16, h = r1 - g0 < 16 ? r1 - g0 : 16;
            float *dst = y + t * W->rows + g0;
            const __m512 v = _mm512_load_ps(acc + (g * n_tiles + t / TT) * 256 + (t % TT) * 16);
            if (stream && h == 16 && ((uintptr_t)dst & 63) == 0)
                _mm512_stream_ps(dst, v);
            else
                _mm512_mask_storeu_ps(dst, (__mmask16)((1u << h) - 1), v);
        }
    if (stream)
        _mm_sfence(); /* streamed stores before the pool's barrier */
}
#endif
