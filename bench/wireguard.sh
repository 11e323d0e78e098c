#!/usr/bin/env bash
# Measures netext's WireGuard provider against the raw veth path and the
# anchor, a plain wireguard-go pair, in one run: iperf3 TCP throughput (1
# and 4 streams, both directions, interleaved rounds, medians), ping
# latency before and after the bulk runs, the tunnel processes' CPU and
# peak RSS. The provider runs as installed: netextd in the client
# namespace starts netext-provider-wireguard as nobody for a configuration
# that `netext config import` made from a wg-quick file, against the
# anchor's own wireguard-go server, which gets the provider as a second
# peer (bench/cmd/wgpeer). Run as root:
#
#   sudo bench/wireguard.sh
#
# Environment: see bench/lib.sh (REPS, DURATION, OUT_DIR, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source bench/lib.sh

bench_init
bench_log "building"
bench_build golang.zx2c4.com/wireguard ./bench/cmd/wgpair ./bench/cmd/wgpeer ./bench/cmd/pinglat \
	./bench/cmd/benchreport
bench_netextd_wireguard

bench_case veth "veth (no tunnel)" 10.231.0.2
bench_wg_up wg
read -r wga wgb <<<"$bench_wg_pids"
server_if=${bench_tag}wb # the anchor's server, listening on 10.231.0.2:51821

# The provider's peer on the same server: 10.231.2.1 on the client side,
# 10.231.2.2 on the server's interface.
"$bench_bin/wgpeer" -iface "$server_if" -endpoint 10.231.0.2:51821 -address 10.231.2.1/32 \
	-allowed 10.231.2.0/24 -mtu 1420 >"$wg_run/bench.conf"
chmod 600 "$wg_run/bench.conf"
ip -n "$bench_s" addr add 10.231.2.2/24 dev "$server_if"

netext config import "$wg_run/bench.conf" --name bench >&2
netext start bench >&2
provider_pid=$(pgrep -u nobody -f "^$provider" | head -1)
[ -n "$provider_pid" ] || bench_die "no provider process"
bench_case netext "netextd + netext-provider-wireguard" 10.231.2.2 "$provider_pid" "$wgb"

bench_iperf_server
bench_ping idle
bench_throughput
bench_ping post

netext status bench >&2
netext message bench stats >"$bench_out/provider-stats.json"
bench_rss wg "wireguard-go, client" "$wga"
bench_rss wg "wireguard-go, server (also the provider's peer)" "$wgb"
bench_rss netext "netext-provider-wireguard (as nobody)" "$provider_pid"
bench_rss netext "netextd" "$netextd_pid"
netext stop bench >&2

bench_report wg
