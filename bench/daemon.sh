#!/usr/bin/env bash
# Measures netextd: the time from a start call on the control API to the
# session's connected event, with the sample provider and its server in
# throwaway network namespaces, over CYCLES start/stop cycles (p50, p90);
# the anchor is the same cycle with the session package driven in-process
# in the same namespace, without the daemon and its API. Also netextd's
# resident memory when idle, after it started and after the cycles.
# Run as root:
#   sudo bench/daemon.sh [cycles]      # 50 by default
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cycles=${1:-50}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
NETEXT_BENCH_DAEMON=$cycles go test -count=1 -run '^TestBenchDaemon$' -v ./internal/daemontest/ |
	awk '/^BENCH/ { sub(/^BENCH /, ""); print } /^(--- FAIL|FAIL)/ { print; failed = 1 } END { exit failed }'
