/* alloc.c — allocation wrappers with a failure-injection hook for tests. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_budget = -1; /* < 0: never fail */
static atomic_long alloc_count;

static int should_fail(void)
{
    atomic_fetch_add(&alloc_count, 1);
    long b = atomic_load(&fail_budget);
    if (b < 0)
        return 0;
    if (b == 0)
        return 1;
    atomic_fetch_sub(&fail_budget, 1);
    return 0;
}

long gf_alloc_fail_after(long n)
{
    atomic_store(&fail_budget, n);
    return atomic_exchange(&alloc_count, 0);
}

size_t gf_mul_size(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return SIZE_MAX;
    return n * size;
}

void *gf_malloc(size_t size)
{
    if (should_fail() || size == SIZE_MAX)
        return NULL;
    return malloc(size ? size : 1);
}

void *gf_calloc(size_t count, size_t size)
{
    if (should_fail() || gf_mul_size(count, size) == SIZE_MAX)
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *gf_realloc(void *ptr, size_t size)
{
    if (should_fail() || size == SIZE_MAX)
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void *gf_alloc_aligned(size_t size)
{
    if (should_fail() || size > SIZE_MAX - 64)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, (size + 63) & ~(size_t)63) != 0)
        return NULL;
    return p;
}

void gf_free(void *ptr) { free(ptr); }
void gf_free_aligned(void *ptr) { free(ptr); }

char *gf_strndup(const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = gf_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *gf_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = gf_malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}
