#!/usr/bin/env bash
# Shows what the WireGuard provider's memory bounds cost: one run with the
# anchor (a plain wireguard-go pair) and one netextd session per variant
# of the provider's bounds, all against the anchor's wireguard-go server,
# with iperf3 rounds interleaved over every path, ping latency, CPU, and
# each provider's peak RSS and memory statistics. Run as root:
#
#   sudo bench/wireguard-bounds.sh
#
# VARIANTS lists the variants as INFLIGHT:BATCH, the providerConfiguration
# fields inFlight and batchSize (see package providers/wireguard; -1
# in-flight is no bound, 0 the provider's default). Default: 0:0 64:32
# 256:32 128:16 128:64 -1:32. The other settings are bench/lib.sh's, with
# STREAMS defaulting to 4 here, and REPS to 3, DURATION to 8.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
STREAMS=${STREAMS:-4}
DURATION=${DURATION:-8}
source bench/lib.sh
VARIANTS=${VARIANTS:-"0:0 64:32 256:32 128:16 128:64 -1:32"}

bench_init
bench_log "building"
bench_build golang.zx2c4.com/wireguard ./bench/cmd/wgpair ./bench/cmd/wgpeer ./bench/cmd/pinglat \
	./bench/cmd/benchreport
bench_netextd_wireguard
bench_wg_up wg
read -r _ wgb <<<"$bench_wg_pids"
server_if=${bench_tag}wb

net=2
declare -A variant_pid
for v in $VARIANTS; do
	inflight=${v%%:*} batch=${v##*:}
	name=v$net
	"$bench_bin/wgpeer" -iface "$server_if" -endpoint 10.231.0.2:51821 -address "10.231.$net.1/32" \
		-allowed "10.231.$net.0/24" -mtu 1420 >"$wg_run/$name.conf"
	chmod 600 "$wg_run/$name.conf"
	ip -n "$bench_s" addr add "10.231.$net.2/24" dev "$server_if"
	netext config import "$wg_run/$name.conf" --name "$name" >&2
	netext config show "$name" --json |
		jq --argjson f "$inflight" --argjson b "$batch" '.providerConfiguration + {inFlight: $f, batchSize: $b}' \
			>"$wg_run/$name.json"
	netext config edit "$name" --provider-config "@$wg_run/$name.json" >&2
	netext start "$name" >&2
	pid=$(pgrep -u nobody -n -f "^$provider") || bench_die "no provider process for $name"
	variant_pid[$name]=$pid
	label="provider, inFlight ${inflight/#0/default}, batch ${batch/#0/default}"
	[ "$inflight" = -1 ] && label="provider, no bound, batch ${batch/#0/default}"
	bench_case "$name" "$label" "10.231.$net.2" "$pid" "$wgb"
	net=$((net + 1))
done

bench_iperf_server
bench_ping idle
bench_throughput
bench_ping post

for ((n = 2; n < net; n++)); do
	name=v$n
	netext message "$name" stats >"$bench_out/$name.stats.json"
	bench_log "$name memory: $(jq -c .memory "$bench_out/$name.stats.json")"
	bench_log "$name bounds: $(jq -c '[.transport.outbound, .transport.inbound]' "$bench_out/$name.stats.json")"
	bench_rss "$name" "netext-provider-wireguard" "${variant_pid[$name]}"
	netext stop "$name" >&2
done
read -r wga _ <<<"$bench_wg_pids"
bench_rss wg "wireguard-go, client" "$wga"
bench_rss wg "wireguard-go, server (every path's peer)" "$wgb"
bench_rss wg "netextd" "$netextd_pid"

bench_report wg
