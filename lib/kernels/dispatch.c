/* dispatch.c — picks the kernel table once per process from CPU features
 * (x86-64: CPUID; aarch64: getauxval(AT_HWCAP, AT_HWCAP2)), lowered by
 * GEMFA_KERNEL_LEVEL (valgrind does not know AVX-512; tests run every
 * level).  Built with -Dsimd=disabled (GF_SIMD_DISABLED) it stays scalar. */
#if defined(__x86_64__) && !defined(GF_SIMD_DISABLED)
#define GF_DISPATCH_X86 1
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__) && !defined(GF_SIMD_DISABLED)
#define GF_DISPATCH_ARM 1
#include <sys/auxv.h>
/* From the kernel's uapi asm/hwcap.h, in case the libc headers lack them. */
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "kernels/kernels.h"

static gf_kernel_table tables[GF_LEVEL_COUNT];
static gf_kernel_level detected = GF_LEVEL_SCALAR;
static int has_vnni __attribute__((unused)), has_bf16 __attribute__((unused));
static int has_avx_vnni __attribute__((unused));
static _Atomic(const gf_kernel_table *) current;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__aarch64__)
static const char *const level_names[GF_LEVEL_COUNT] = {"scalar", "neon", "dotprod", "i8mm"};
#define LEVEL_LIST "scalar, neon, dotprod or i8mm"
#else
static const char *const level_names[GF_LEVEL_COUNT] = {"scalar", "avx2", "avx512"};
#define LEVEL_LIST "scalar, avx2 or avx512"
#endif

const char *gf_kernel_level_name(gf_kernel_level level)
{
    return (unsigned)level < GF_LEVEL_COUNT ? level_names[level] : "unknown";
}

#if defined(GF_DISPATCH_X86) && defined(__GNUC__)
/* F16C through CPUID: clang's __builtin_cpu_supports does not know "f16c"
 * (and the clang build runs the fuzz targets). */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

static void detect(void)
{
#if defined(GF_DISPATCH_ARM)
    /* NEON is part of Armv8-A; the kernel still says so in HWCAP_ASIMD. */
    const unsigned long hw = getauxval(AT_HWCAP);
    if (hw & HWCAP_ASIMD)
        detected = GF_LEVEL_NEON;
    if (detected == GF_LEVEL_NEON && (hw & HWCAP_ASIMDDP))
        detected = GF_LEVEL_DOTPROD;
    if (detected == GF_LEVEL_DOTPROD && (getauxval(AT_HWCAP2) & HWCAP2_I8MM))
        detected = GF_LEVEL_I8MM;
#endif
#if defined(GF_DISPATCH_X86) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        cpu_has_f16c())
        detected = GF_LEVEL_AVX2;
    if (detected == GF_LEVEL_AVX2) { /* AVX-VNNI: CPUID.(7,1):EAX bit 4 */
        unsigned a, b, c, d;
        has_avx_vnni = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
    }
    if (detected == GF_LEVEL_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq")) {
        detected = GF_LEVEL_AVX512;
        has_vnni = __builtin_cpu_supports("avx512vnni");
        has_bf16 = __builtin_cpu_supports("avx512bf16");
    }
#endif
}

static void init(void)
{
    detect();
    /* Each level starts as a copy of the one below and overrides what it has. */
    gf_kernels_fill_scalar(&tables[GF_LEVEL_SCALAR]);
    tables[GF_LEVEL_SCALAR].level = GF_LEVEL_SCALAR;
#if defined(GF_DISPATCH_ARM)
    if (detected >= GF_LEVEL_NEON) {
        tables[GF_LEVEL_NEON] = tables[GF_LEVEL_SCALAR];
        gf_kernels_fill_neon(&tables[GF_LEVEL_NEON]);
        tables[GF_LEVEL_NEON].level = GF_LEVEL_NEON;
    }
    if (detected >= GF_LEVEL_DOTPROD) {
        tables[GF_LEVEL_DOTPROD] = tables[GF_LEVEL_NEON];
        gf_kernels_fill_dotprod(&tables[GF_LEVEL_DOTPROD]);
        tables[GF_LEVEL_DOTPROD].level = GF_LEVEL_DOTPROD;
    }
    if (detected >= GF_LEVEL_I8MM) {
        tables[GF_LEVEL_I8MM] = tables[GF_LEVEL_DOTPROD];
        gf_kernels_fill_i8mm(&tables[GF_LEVEL_I8MM]);
        tables[GF_LEVEL_I8MM].level = GF_LEVEL_I8MM;
    }
#endif
#if defined(GF_DISPATCH_X86)
    if (detected >= GF_LEVEL_AVX2) {
        tables[GF_LEVEL_AVX2] = tables[GF_LEVEL_SCALAR];
        gf_kernels_fill_avx2(&tables[GF_LEVEL_AVX2], has_avx_vnni);
        tables[GF_LEVEL_AVX2].level = GF_LEVEL_AVX2;
    }
    if (detected >= GF_LEVEL_AVX512) {
        tables[GF_LEVEL_AVX512] = tables[GF_LEVEL_AVX2];
        gf_kernels_fill_avx512(&tables[GF_LEVEL_AVX512], has_vnni, has_bf16);
        tables[GF_LEVEL_AVX512].level = GF_LEVEL_AVX512;
    }
#endif
    for (int l = 0; l < GF_LEVEL_COUNT; l++)
        tables[l].name = level_names[l];

    gf_kernel_level use = detected;
    const char *env = getenv("GEMFA_KERNEL_LEVEL");
    if (env && *env) {
        int found = 0;
        for (int l = 0; l < GF_LEVEL_COUNT; l++) {
            if (strcmp(env, level_names[l]) == 0) {
                found = 1;
                if ((gf_kernel_level)l < use)
                    use = (gf_kernel_level)l;
            }
        }
        if (!found)
            gf_log(GEMFA_LOG_WARN, "GEMFA_KERNEL_LEVEL=%s is not " LEVEL_LIST "; ignored", env);
    }
    atomic_store(&current, &tables[use]);
}

const gf_kernel_table *gf_kernels(void)
{
    pthread_once(&once, init);
    return atomic_load_explicit(&current, memory_order_relaxed);
}

const gf_kernel_table *gf_kernels_for_level(gf_kernel_level level)
{
    pthread_once(&once, init);
    if ((unsigned)level >= GF_LEVEL_COUNT || level > detected)
        return NULL;
    return &tables[level];
}

gf_kernel_level gf_kernel_level_detected(void)
{
    pthread_once(&once, init);
    return detected;
}

int gf_kernel_level_force(gf_kernel_level level)
{
    const gf_kernel_table *t = gf_kernels_for_level(level);
    if (!t)
        return -1;
    atomic_store(&current, t);
    return 0;
}

int gf_cpu_has_avx512_vnni(void)
{
    pthread_once(&once, init);
#if defined(__aarch64__)
    return 0;
#else
    return detected >= GF_LEVEL_AVX512 && has_vnni;
#endif
}

#if !defined(GF_DISPATCH_X86)
/* No AVX2 level in this build (kernels_avx2.c is empty): the test hook
 * reports no kernels. */
void gf_kernels_avx2_q4_variants(gf_rows_fn *plain, gf_rows_fn *vnni)
{
    *plain = NULL;
    *vnni = NULL;
}
#endif

int gf_cpu_has_avx_vnni(void)
{
    pthread_once(&once, init);
#if defined(__aarch64__)
    return 0;
#else
    return detected >= GF_LEVEL_AVX2 && has_avx_vnni;
#endif
}

int gf_cpu_has_avx512_bf16(void)
{
    pthread_once(&once, init);
#if defined(__aarch64__)
    return 0;
#else
    return detected >= GF_LEVEL_AVX512 && has_bf16;
#endif
}
