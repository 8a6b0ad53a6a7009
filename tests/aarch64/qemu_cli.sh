#!/bin/sh
# qemu_cli.sh ARGS... — the cross-built gemfa ($GEMFA_AARCH64_CLI) under
# qemu-user ($GEMFA_QEMU, set by tests/run_aarch64.sh), for the CLI's Python
# tests (GEMFA_CLI) in the aarch64 pass.  The CPU model comes from QEMU_CPU.
exec $GEMFA_QEMU "$GEMFA_AARCH64_CLI" "$@"
