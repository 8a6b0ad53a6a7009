/* bench_bw.h — the memory read bandwidth of this machine, measured like
 * the decode step uses it: n threads summing one large buffer, taking 1 MiB
 * chunks from a shared counter as the matrix kernels take rows (the
 * roofline of gemfa bench).
 *
 * The probe lives in a child process forked before the model is loaded:
 * its buffer then never counts in the benchmark's resident memory, and the
 * benchmark can ask for a measurement between two decode steps, so that
 * speed and bandwidth are measured under the same load from neighbours. */
#ifndef GEMFA_BENCH_BW_H
#define GEMFA_BENCH_BW_H

#include <stddef.h>
#include <sys/types.h>

typedef struct bench_bw {
    pid_t pid;
    int to_child, from_child; /* pipe ends */
} bench_bw;

/* Forks the probe process with a buffer of `bytes` read by `n_threads`
 * threads.  Returns 0, or -1 (errno set) when it cannot start. */
int bench_bw_start(bench_bw *bw, size_t bytes, int n_threads);

/* One read of the whole buffer; *gbps = GB/s.  Returns 0, or -1 when the
 * probe process failed (out of memory, died). */
int bench_bw_measure(bench_bw *bw, double *gbps);

/* Ends the probe process (safe on a bench_bw that failed to start). */
void bench_bw_stop(bench_bw *bw);

#endif
