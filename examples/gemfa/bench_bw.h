/* bench_bw.h — the memory read bandwidth of this machine, measured like
 * the decode step uses it: n threads each summing their slice of one large
 * buffer (the roofline of gemfa bench). */
#ifndef GEMFA_BENCH_BW_H
#define GEMFA_BENCH_BW_H

#include <stddef.h>

typedef struct bench_bw {
    double best_gbps;   /* fastest round */
    double median_gbps; /* median round */
} bench_bw;

/* Reads a buffer of `bytes` (rounded to 4 KiB) `rounds` times with
 * `n_threads` threads.  Returns 0, or -1 when memory or threads cannot be had. */
int bench_bandwidth(size_t bytes, int n_threads, int rounds, bench_bw *out);

#endif
