#!/bin/sh
# bench_ab.sh — builds bench_ab (see bench_ab.c) with up to 4 variants of a
# kernel file, each "FILE [-DKNOB=VALUE ...]", against a configured build dir:
#   tests/kernels/bench_ab.sh build /tmp/ab "lib/kernels/kernels_avx512.c" \
#       "lib/kernels/kernels_avx512.c -DGF_PREFETCH_L2_TOKENS=5"
#   nice /tmp/ab 1 16384 2048 31
# (an older version of the file: git show REV:lib/kernels/kernels_avx512.c > /tmp/old.c)
set -e
[ $# -ge 3 ] || { echo "usage: $0 BUILD_DIR OUT 'FILE [FLAGS]'..." >&2; exit 2; }
build=$1 out=$2
shift 2
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc="-I$src/lib -I$src/include -I$build"
v=0 objs=""
for spec in "$@"; do
    file=${spec%% *} flags=""
    [ "$file" != "$spec" ] && flags=${spec#* }
    # shellcheck disable=SC2086
    gcc -O3 -std=gnu11 $inc -Dgf_kernels_fill_avx512=ab_fill_v$v $flags -c "$file" -o "$tmp/v$v.o"
    objs="$objs $tmp/v$v.o"
    v=$((v + 1))
done
while [ $v -lt 4 ]; do # unused slots
    printf 'struct gf_kernel_table;\nvoid ab_fill_v%d(struct gf_kernel_table *t, int a, int b) { (void)t; (void)a; (void)b; }\n' $v > "$tmp/s$v.c"
    gcc -std=gnu11 -c "$tmp/s$v.c" -o "$tmp/s$v.o"
    objs="$objs $tmp/s$v.o"
    v=$((v + 1))
done
# shellcheck disable=SC2086
gcc -O2 -std=gnu11 -Wall -Wextra -Werror $inc -DAB_VARIANTS=$# "$src/tests/kernels/bench_ab.c" $objs \
    "$build/lib/libgemfa_objects.a" -o "$out" -lm -lpthread -lyajl -lopenblas
