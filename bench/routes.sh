#!/usr/bin/env bash
# Measures how fast netcfg applies and removes 10,000 and 100,000 routes,
# against iproute2's `ip -batch` doing the same in the same run (the anchor).
# Everything happens in throwaway network namespaces. Run as root:
#   sudo bench/routes.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
rounds=${1:-3}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"

echo "## netcfg (go test -bench, $rounds rounds)"
go test -run '^$' -bench 'Benchmark(Apply|Remove)Routes' -benchtime 3x -count "$rounds" ./netcfg/ |
	awk '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name); printf "%-34s %8.3f s\n", name, $3/1e9 }'

echo "## ip -batch (anchor, $rounds rounds)"
ns=netext-bench-$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add b0 type bridge
ip -n "$ns" link set b0 up
ip -n "$ns" addr add 10.255.255.254/32 dev b0
for n in 10000 100000; do
	add=$(mktemp) del=$(mktemp)
	for ((i = 0; i < n; i++)); do
		printf 'route add 10.%d.%d.%d/32 dev b0 table 7373\n' $((i >> 16)) $(((i >> 8) & 255)) $((i & 255))
	done >"$add"
	sed 's/^route add/route del/' "$add" >"$del"
	for ((r = 0; r < rounds; r++)); do
		t0=$(date +%s.%N)
		ip -n "$ns" -batch "$add"
		t1=$(date +%s.%N)
		ip -n "$ns" -batch "$del"
		t2=$(date +%s.%N)
		awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
			printf "%-34s %8.3f s\n%-34s %8.3f s\n", "ip-batch-add/" n, b - a, "ip-batch-del/" n, c - b }'
	done
	rm -f "$add" "$del"
done
