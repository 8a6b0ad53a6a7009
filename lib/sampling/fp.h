/* fp.h — include FIRST in every sampling file that does float math.
 * Forbids fusing a * b + c into one rounding (GCC's default for gnu11 on
 * targets with FMA), so weights, cuts and draws are the same bits on every
 * platform.  no-trapping-math (no FP exception handlers are installed)
 * changes no result but lets GCC vectorize the compare-and-select loops.
 * First, so that every function of the file gets the same options and
 * inlining between them is not blocked. */
#ifndef GF_FP_H
#define GF_FP_H
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off", "no-trapping-math")
#endif
#endif
