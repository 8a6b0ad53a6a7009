#!/usr/bin/env bash
# run_json_full.sh [BUILD_DIR] — the full constrained-generation check: 1,000
# sampled generations (temperature 1.5, budget 200 tokens) from the tiny
# model under "any JSON" and each bounded schema of test_json_gen.py,
# validated by Python's json and npm ajv.  About 2 minutes on one core.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
ninja -C "$BUILD" tests/constrain/json_gen >/dev/null
GEMFA_BUILD_ROOT="$BUILD" GEMFA_TEST_DATA="$ROOT/tests/data" \
    exec python3 "$ROOT/tests/constrain/test_json_gen.py" 1000
