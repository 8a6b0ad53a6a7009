/* dispatch.c — picks the kernel table once per process from CPU features,
 * lowered by GEMFA_KERNEL_LEVEL (valgrind does not know AVX-512; tests run
 * every level). */
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "kernels/kernels.h"

static gf_kernel_table tables[GF_LEVEL_COUNT];
static gf_kernel_level detected = GF_LEVEL_SCALAR;
static int has_vnni, has_bf16;
static _Atomic(const gf_kernel_table *) current;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const char *const level_names[GF_LEVEL_COUNT] = {"scalar", "avx2", "avx512"};

const char *gf_kernel_level_name(gf_kernel_level level)
{
    return (unsigned)level < GF_LEVEL_COUNT ? level_names[level] : "unknown";
}

#if defined(__x86_64__) && defined(__GNUC__)
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
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        cpu_has_f16c())
        detected = GF_LEVEL_AVX2;
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
#if defined(__x86_64__)
    if (detected >= GF_LEVEL_AVX2) {
        tables[GF_LEVEL_AVX2] = tables[GF_LEVEL_SCALAR];
        gf_kernels_fill_avx2(&tables[GF_LEVEL_AVX2]);
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
            gf_log(GEMFA_LOG_WARN, "GEMFA_KERNEL_LEVEL=%s is not scalar, avx2 or avx512; ignored",
                   env);
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
    return detected >= GF_LEVEL_AVX512 && has_vnni;
}

int gf_cpu_has_avx512_bf16(void)
{
    pthread_once(&once, init);
    return detected >= GF_LEVEL_AVX512 && has_bf16;
}
