#!/usr/bin/env bash
# Measures the sample provider's tunnel against the raw veth path and the
# anchor, a plain wireguard-go pair, in one run: iperf3 TCP throughput (1
# and 4 streams, both directions, interleaved rounds, medians), ping
# latency before and after the bulk runs, the tunnel processes' CPU and
# peak RSS. The sample provider runs as the daemon runs it: through the
# session host (bench/cmd/samplehost) in the client namespace, as nobody,
# against netext-sample-server in the server namespace. Run as root:
#
#   sudo bench/sample.sh
#
# Environment: see bench/lib.sh (REPS, DURATION, OUT_DIR, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source bench/lib.sh

bench_init
bench_log "building"
bench_build golang.zx2c4.com/wireguard ./bench/cmd/wgpair ./bench/cmd/samplehost ./bench/cmd/pinglat \
	./bench/cmd/benchreport ./cmd/netext-provider-sample ./cmd/netext-sample-server

bench_case veth "veth (no tunnel)" 10.231.0.2
bench_wg_up wg

"$bench_bin/netext-sample-server" -genkey >"$bench_work/key"
chmod 600 "$bench_work/key"
bench_start sample-server "$bench_s" "$bench_bin/netext-sample-server" \
	-listen 10.231.0.2:51900 -key-file "$bench_work/key" -tun "${bench_tag}ss" -address 10.231.2.2/24 -mtu 1420
server_pid=$bench_last_pid
bench_wait_for sample-server "sample server: listening"
mkdir "$bench_work/state"
bench_start samplehost "$bench_c" "$bench_bin/samplehost" -provider "$bench_bin/netext-provider-sample" \
	-server 10.231.0.2:51900 -key-file "$bench_work/key" -address 10.231.2.1/24 -mtu 1420 \
	-device "${bench_tag}sp" -state-dir "$bench_work/state"
host_pid=$bench_last_pid
bench_wait_for samplehost "^connected pid="
provider_pid=$(sed -n 's/^connected pid=\([0-9]*\).*/\1/p' "$bench_work/samplehost.log")
bench_case sample "sample provider (session)" 10.231.2.2 "$provider_pid" "$server_pid"

bench_iperf_server
bench_ping idle
bench_throughput
bench_ping post

read -r wga wgb <<<"$bench_wg_pids"
bench_rss wg "wireguard-go, client" "$wga"
bench_rss wg "wireguard-go, server" "$wgb"
bench_rss sample "netext-provider-sample (as nobody)" "$provider_pid"
bench_rss sample "netext-sample-server" "$server_pid"
bench_rss sample "samplehost (session host)" "$host_pid"

bench_report wg
