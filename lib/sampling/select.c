/* select.c — max, first match, top-k by a filtered scan, introsort and
 * quickselect on candidates (see select.h). */
#include "sampling/fp.h"

#include "sampling/select.h"

#include <math.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* Scores per block of the scans below. */
#define LANES 16

/* Whether any of w[0..16 * blocks) is > t (or >= t); NaN never is.  The
 * scans below test many scores at a time and look closer only on a hit. */
static inline int any_above(const float *w, int blocks, float t, int or_equal)
{
#if defined(__SSE__)
    __m128 vt = _mm_set1_ps(t), hit = _mm_setzero_ps();
    for (int j = 0; j < 4 * blocks; j++) {
        __m128 x = _mm_loadu_ps(w + 4 * j);
        hit = _mm_or_ps(hit, or_equal ? _mm_cmpge_ps(x, vt) : _mm_cmpgt_ps(x, vt));
    }
    return _mm_movemask_ps(hit) != 0;
#else
    int any = 0;
    for (int j = 0; j < LANES * blocks; j++)
        any |= or_equal ? w[j] >= t : w[j] > t;
    return any;
#endif
}

float gf_max(const float *w, size_t n)
{
    size_t i = 0;
    float m = -INFINITY;
#if defined(__SSE__)
    /* maxps is exact and returns its second operand when the first is NaN,
     * so NaN is skipped; compilers do not vectorize a float max reduction
     * without -ffinite-math-only, hence the intrinsics */
    __m128 acc[8];
    for (int j = 0; j < 8; j++)
        acc[j] = _mm_set1_ps(-INFINITY);
    /* eight independent chains: the loop runs at load speed, not at
     * maxps latency */
    for (; i + 2 * LANES <= n; i += 2 * LANES)
        for (int j = 0; j < 8; j++)
            acc[j] = _mm_max_ps(_mm_loadu_ps(w + i + 4 * j), acc[j]);
    for (int j = 1; j < 8; j++)
        acc[0] = _mm_max_ps(acc[j], acc[0]);
    float lanes[4];
    _mm_storeu_ps(lanes, acc[0]);
    for (int j = 0; j < 4; j++)
        m = lanes[j] > m ? lanes[j] : m;
#endif
    for (; i < n; i++)
        m = w[i] > m ? w[i] : m; /* false for NaN */
    return gf_score(m);
}

size_t gf_argmax(const float *w, size_t n, float max)
{
    if (max == -INFINITY)
        return n;
    /* max is the largest score, so gf_score(x) == max <=> x >= max (this
     * also matches +inf when max is FLT_MAX) */
    size_t i = 0;
    while (i + 4 * LANES <= n && !any_above(w + i, 4, max, 1))
        i += 4 * LANES;
    while (i + LANES <= n && !any_above(w + i, 1, max, 1))
        i += LANES;
    for (; i < n; i++)
        if (w[i] >= max)
            return i;
    return n;
}

/* ---- quickselect and introsort on the total order ---------------------- */

static void swap_cand(gf_cand *a, gf_cand *b)
{
    gf_cand t = *a;
    *a = *b;
    *b = t;
}

/* Moves the median of c[0], c[n/2], c[n-1] to c[0] as the pivot. */
static void median_of_three_to_front(gf_cand *c, size_t n)
{
    size_t mid = n / 2, last = n - 1;
    if (gf_cand_before(c[mid], c[0]))
        swap_cand(&c[mid], &c[0]);
    if (gf_cand_before(c[last], c[0]))
        swap_cand(&c[last], &c[0]);
    if (gf_cand_before(c[last], c[mid]))
        swap_cand(&c[last], &c[mid]);
    /* now c[0] <= c[mid] <= c[last] in rank order: c[mid] is the median */
    swap_cand(&c[0], &c[mid]);
}

/* Hoare-style partition around the pivot c[0]; returns its final index p:
 * c[0..p) rank before it, c(p..n) after.  Keys are distinct in the total
 * order, so no element equals the pivot but itself. */
static size_t partition(gf_cand *c, size_t n)
{
    gf_cand pivot = c[0];
    size_t i = 1, j = n - 1;
    for (;;) {
        while (i <= j && gf_cand_before(c[i], pivot))
            i++;
        while (j >= i && gf_cand_before(pivot, c[j]))
            j--;
        if (i >= j)
            break;
        swap_cand(&c[i], &c[j]);
        i++;
        j--;
    }
    swap_cand(&c[0], &c[i - 1]);
    return i - 1;
}

static void insertion_sort(gf_cand *c, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        gf_cand x = c[i];
        size_t j = i;
        while (j > 0 && gf_cand_before(x, c[j - 1])) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

/* Heap keyed so the root is the element ranked last (a max-heap on rank). */
static void sift_down(gf_cand *c, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && gf_cand_before(c[child], c[child + 1]))
            child++;
        if (!gf_cand_before(c[root], c[child]))
            return;
        swap_cand(&c[root], &c[child]);
        root = child;
    }
}

static void heap_sort(gf_cand *c, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(c, i, n);
    for (size_t end = n; end > 1; end--) {
        swap_cand(&c[0], &c[end - 1]);
        sift_down(c, 0, end - 1);
    }
}

static void intro_sort(gf_cand *c, size_t n, int depth)
{
    while (n > 24) {
        if (depth-- == 0) {
            heap_sort(c, n);
            return;
        }
        median_of_three_to_front(c, n);
        size_t p = partition(c, n);
        /* recurse into the smaller side, loop on the larger */
        if (p < n - p - 1) {
            intro_sort(c, p, depth);
            c += p + 1;
            n -= p + 1;
        } else {
            intro_sort(c + p + 1, n - p - 1, depth);
            n = p;
        }
    }
    insertion_sort(c, n);
}

static int depth_limit(size_t n)
{
    int d = 0;
    while (n > 1) {
        n >>= 1;
        d++;
    }
    return 2 * d + 2;
}

void gf_cand_sort(gf_cand *c, size_t n)
{
    intro_sort(c, n, depth_limit(n));
}

void gf_cand_partition(gf_cand *c, size_t n, size_t k)
{
    if (k == 0 || k >= n)
        return;
    int depth = depth_limit(n);
    /* invariant: the k best of the original lie in c[0..n) shifted by what
     * was already fixed in front */
    while (n > 24) {
        if (depth-- == 0) {
            heap_sort(c, n);
            return;
        }
        median_of_three_to_front(c, n);
        size_t p = partition(c, n);
        if (p == k || p + 1 == k)
            return;
        if (p > k) {
            n = p;
        } else {
            c += p + 1;
            n -= p + 1;
            k -= p + 1;
        }
    }
    insertion_sort(c, n);
}

/* ---- top-k by a filtered scan ------------------------------------------ */

/* Index in c[0..n) of the candidate ranked last. */
static size_t worst_index(const gf_cand *c, size_t n)
{
    size_t w = 0;
    for (size_t i = 1; i < n; i++)
        if (gf_cand_before(c[w], c[i]))
            w = i;
    return w;
}

/* Bit j set when w[j] > t, for j < 16 (NaN never is). */
static inline unsigned above_mask16(const float *w, float t)
{
#if defined(__SSE__)
    __m128 vt = _mm_set1_ps(t);
    return (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(w), vt)) |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(w + 4), vt)) << 4 |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(w + 8), vt)) << 8 |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(w + 12), vt)) << 12;
#else
    unsigned mask = 0;
    for (int j = 0; j < LANES; j++)
        mask |= (unsigned)(w[j] > t) << j;
    return mask;
#endif
}

/* Bit j set when lo <= w[j] < hi, for j < 16. */
static inline unsigned range_mask16(const float *w, float lo, float hi)
{
#if defined(__SSE__)
    __m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
    unsigned mask = 0;
    for (int j = 0; j < 4; j++) {
        __m128 x = _mm_loadu_ps(w + 4 * j);
        __m128 in = _mm_and_ps(_mm_cmpge_ps(x, vlo), _mm_cmplt_ps(x, vhi));
        mask |= (unsigned)_mm_movemask_ps(in) << (4 * j);
    }
    return mask;
#else
    unsigned mask = 0;
    for (int j = 0; j < LANES; j++)
        mask |= (unsigned)(w[j] >= lo && w[j] < hi) << j;
    return mask;
#endif
}

size_t gf_count_range(const float *w, size_t n, float lo, float hi)
{
    size_t m = 0, i = 0;
    for (; i + LANES <= n; i += LANES)
        m += (size_t)__builtin_popcount(range_mask16(w + i, lo, hi));
    for (; i < n; i++)
        m += w[i] >= lo && w[i] < hi;
    return m;
}

size_t gf_collect_range(const float *w, size_t n, float lo, float hi, gf_cand *out, size_t cap)
{
    size_t m = 0, i = 0;
    for (; i + LANES <= n; i += LANES)
        for (unsigned mask = range_mask16(w + i, lo, hi); mask; mask &= mask - 1) {
            if (m == cap)
                return m;
            size_t at = i + (size_t)__builtin_ctz(mask);
            out[m++] = (gf_cand){.score = w[at], .id = (int32_t)at};
        }
    for (; i < n && m < cap; i++)
        if (w[i] >= lo && w[i] < hi)
            out[m++] = (gf_cand){.score = w[i], .id = (int32_t)i};
    return m;
}

/* The scan state of gf_select_top. */
typedef struct top_scan {
    gf_cand *buf;
    size_t k, cap, count;
    float threshold; /* an entry must beat it to be kept */
} top_scan;

static void offer(top_scan *t, const float *w, size_t i)
{
    float x = gf_score(w[i]);
    if (!(x > t->threshold))
        return;
    t->buf[t->count].score = x;
    t->buf[t->count].id = (int32_t)i;
    if (++t->count == t->cap && t->cap > t->k) {
        gf_cand_partition(t->buf, t->count, t->k);
        t->count = t->k;
        t->threshold = t->buf[worst_index(t->buf, t->k)].score;
    }
}

size_t gf_select_top(const float *w, size_t n, size_t k, gf_cand *buf, size_t cap)
{
    if (k == 0)
        return 0;
    /* Entries are offered while they beat the threshold, the k-th best
     * seen so far; when the buffer fills it is cut back to its k best.  Ids
     * grow during the scan, so a later entry equal to the threshold ranks
     * after it and a strict comparison is exact.  The vector filter (NaN
     * fails, +inf passes and is then scored) skips runs of 64 and then
     * visits only the entries that pass it. */
    top_scan t = {.buf = buf, .k = k, .cap = cap, .count = 0, .threshold = -INFINITY};
    size_t i = 0;
    for (; i + 4 * LANES <= n; i += 4 * LANES) {
        if (!any_above(w + i, 4, t.threshold, 0))
            continue;
        for (size_t q = i; q < i + 4 * LANES; q += LANES)
            for (unsigned mask = above_mask16(w + q, t.threshold); mask; mask &= mask - 1)
                offer(&t, w, q + (size_t)__builtin_ctz(mask));
    }
    for (; i < n; i++)
        offer(&t, w, i);
    if (t.count > k) {
        gf_cand_partition(buf, t.count, k);
        t.count = k;
    }
    return t.count;
}
