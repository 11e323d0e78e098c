# Shared by the tunnel benchmarks (bench/sample.sh, ...). Source it from the
# repository root, after scripts/setup.sh, as root:
#
#   bench_init                  two namespaces joined by a veth pair, a work
#                               directory, and a trap that removes everything
#   bench_build PKG...          go build into $bench_bin
#   bench_start NAME NS CMD...  a background process in a namespace, logging
#                               to $bench_work/NAME.log, ended by the trap
#   bench_wg_up ID              the anchor: a plain wireguard-go pair
#   bench_netextd_wireguard     netextd in the client namespace, with the
#                               WireGuard provider installed
#   bench_case ID LABEL ADDR PID...
#                               registers a path: iperf3 and ping go to ADDR
#                               from the client namespace; PIDs are its tunnel
#                               processes, whose CPU is measured
#   bench_throughput            every round of iperf3 over every path
#   bench_ping PHASE            ping latency over every path
#   bench_rss ID NAME PID       records a process's peak RSS
#   bench_report ANCHOR         the tables (cmd/benchreport)
#
# Addresses: the client namespace $bench_c has veth0 10.231.0.1/24, the
# server namespace $bench_s veth0 10.231.0.2/24. The wireguard-go pair uses
# 10.231.1.1 (client) and 10.231.1.2 (server); later paths take 10.231.2.0/24
# and up.
#
# Environment: REPS (rounds, 3), DURATION (seconds per iperf3 run, 10), OMIT
# (seconds discarded first, 1), STREAMS ("1 4"), DIRS ("fwd rev"),
# PING_COUNT (500 per path), PING_INTERVAL (0.01 s between any two
# requests), OUT_DIR (keep the raw results
# there instead of in the work directory, which is removed).

REPS=${REPS:-3}
DURATION=${DURATION:-10}
OMIT=${OMIT:-1}
STREAMS=${STREAMS:-"1 4"}
DIRS=${DIRS:-"fwd rev"}
PING_COUNT=${PING_COUNT:-500}
PING_INTERVAL=${PING_INTERVAL:-0.01}

bench_pids=()
declare -A bench_addr bench_case_pids
bench_ids=()

bench_log() { echo "bench: $*" >&2; }
bench_die() {
	echo "bench: $*" >&2
	exit 1
}

bench_init() {
	[ "$(id -u)" = 0 ] || bench_die "run as root"
	command -v iperf3 >/dev/null 2>&1 || netext_apt iperf3
	bench_work=$(mktemp -d /tmp/netext-bench.XXXXXX)
	chmod 755 "$bench_work" # providers run as nobody from here
	bench_bin=$bench_work/bin
	bench_out=${OUT_DIR:-$bench_work/out}
	mkdir -p "$bench_bin" "$bench_out"/{iperf,cpu,ping,rss}
	: >"$bench_out/cases"
	bench_tag=nb$(($$ % 100000))
	bench_c=netext-bench-$$-c
	bench_s=netext-bench-$$-s
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	ip netns add "$bench_c"
	ip netns add "$bench_s"
	ip -n "$bench_c" link set lo up
	ip -n "$bench_s" link set lo up
	ip link add "${bench_tag}v" netns "$bench_c" type veth peer name veth0 netns "$bench_s"
	ip -n "$bench_c" link set "${bench_tag}v" name veth0
	ip -n "$bench_c" addr add 10.231.0.1/24 dev veth0
	ip -n "$bench_s" addr add 10.231.0.2/24 dev veth0
	ip -n "$bench_c" link set veth0 up
	ip -n "$bench_s" link set veth0 up
	{
		echo "Run $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem:/ {print $2}') GiB, kernel $(uname -r), $(go env GOVERSION), $(iperf3 --version | head -1 | awk '{print $1, $2}'), wireguard-go $(go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)."
		echo "Rounds: $REPS × ${DURATION}s (after ${OMIT}s discarded), interleaved; ping: $PING_COUNT × ${PING_INTERVAL}s."
	} >"$bench_out/machine"
}

bench_cleanup() {
	local pid i
	for pid in "${bench_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${bench_pids[@]}"; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	ip netns del "$bench_c" 2>/dev/null || true
	ip netns del "$bench_s" 2>/dev/null || true
	if [ -n "${OUT_DIR:-}" ]; then
		cp "$bench_work"/*.log "$OUT_DIR"/ 2>/dev/null || true
	fi
	rm -rf "$bench_work"
}

# bench_build PKG... builds commands into $bench_bin.
bench_build() {
	go build -o "$bench_bin/" "$@"
}

# bench_start NAME NS CMD... starts CMD in namespace NS in the background
# and sets bench_last_pid. Environment assignments may precede CMD.
bench_start() {
	local name=$1 ns=$2
	shift 2
	ip netns exec "$ns" env "$@" >"$bench_work/$name.log" 2>&1 &
	bench_last_pid=$!
	bench_pids+=("$bench_last_pid")
}

# bench_wait_for NAME PATTERN [SECONDS] waits until the log of NAME holds
# PATTERN, failing when its process ended or the time is up.
bench_wait_for() {
	local name=$1 pattern=$2 secs=${3:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		grep -qs -- "$pattern" "$bench_work/$name.log" && return 0
		sleep 0.1
	done
	cat "$bench_work/$name.log" >&2
	bench_die "$name: no \"$pattern\" within ${secs}s"
}

# bench_case ID LABEL ADDR PID... registers a path.
bench_case() {
	local id=$1 label=$2 addr=$3
	shift 3
	bench_ids+=("$id")
	bench_addr[$id]=$addr
	bench_case_pids[$id]="$*"
	printf '%s\t%s\n' "$id" "$label" >>"$bench_out/cases"
}

# bench_wg_up ID starts the anchor, unmodified wireguard-go built from the
# module in go.mod, in both namespaces, configures the pair with wgpair,
# and registers it as path ID.
bench_wg_up() {
	local id=$1 a=${bench_tag}wa b=${bench_tag}wb i
	[ -x "$bench_bin/wireguard" ] || bench_build golang.zx2c4.com/wireguard
	[ -x "$bench_bin/wgpair" ] || bench_build ./bench/cmd/wgpair
	bench_start wg-client "$bench_c" WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error "$bench_bin/wireguard" -f "$a"
	local pa=$bench_last_pid
	bench_start wg-server "$bench_s" WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error "$bench_bin/wireguard" -f "$b"
	local pb=$bench_last_pid
	for ((i = 0; i < 100; i++)); do
		[ -S "/var/run/wireguard/$a.sock" ] && [ -S "/var/run/wireguard/$b.sock" ] && break
		sleep 0.1
	done
	"$bench_bin/wgpair" -a "$a" -a-endpoint 10.231.0.1:51820 -a-allowed 10.231.1.1/32 \
		-b "$b" -b-endpoint 10.231.0.2:51821 -b-allowed 10.231.1.2/32
	ip -n "$bench_c" addr add 10.231.1.1/24 dev "$a"
	ip -n "$bench_s" addr add 10.231.1.2/24 dev "$b"
	ip -n "$bench_c" link set "$a" up
	ip -n "$bench_s" link set "$b" up
	bench_case "$id" "wireguard-go" 10.231.1.2 "$pa" "$pb"
	bench_wg_pids="$pa $pb"
}

# bench_netextd_wireguard builds netextd, netext and the WireGuard
# provider, gives netextd a manifest that runs the provider as nobody, and
# starts netextd in the client namespace. It sets wg_run (its directory),
# provider (the provider's executable) and netextd_pid, and defines the
# function netext (the CLI on netextd's socket).
bench_netextd_wireguard() {
	# netextd runs only providers whose files root alone can change, and
	# /tmp (the work directory's parent) is everyone's: the provider, its
	# manifest and netextd's state go under /run.
	wg_run=$(mktemp -d /run/netext-bench-wg.XXXXXX)
	chmod 755 "$wg_run"
	trap 'bench_cleanup; rm -rf "$wg_run"' EXIT
	mkdir "$wg_run/bin" "$wg_run/providers.d"
	bench_build ./cmd/netextd ./cmd/netext
	go build -o "$wg_run/bin/" ./cmd/netext-provider-wireguard
	provider=$wg_run/bin/netext-provider-wireguard
	cat >"$wg_run/providers.d/wireguard.json" <<JSON
{"id": "org.netext.wireguard", "description": "WireGuard", "executable": "$provider", "user": "nobody", "kind": "packet"}
JSON
	bench_start netextd "$bench_c" "$bench_bin/netextd" --state-dir "$wg_run/state" \
		--socket "$wg_run/netextd.sock" --providers-dir "$wg_run/providers.d" --log-level info
	netextd_pid=$bench_last_pid
	bench_wait_for netextd "netextd ready"
	netext() { "$bench_bin/netext" --socket "$wg_run/netextd.sock" "$@"; }
}

# bench_ticks PID... prints the CPU ticks (user + system) the processes
# have used.
bench_ticks() {
	local pid sum=0 t
	for pid in "$@"; do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || t=0
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# bench_iperf ID STREAMS DIR ROUND runs one iperf3 measurement over path
# ID, with the CPU of its tunnel processes.
bench_iperf() {
	local id=$1 p=$2 dir=$3 r=$4 name t0 t1 w0 w1 rev=
	name=$id.P$p.$dir.r$r
	[ "$dir" = rev ] && rev=-R
	# shellcheck disable=SC2086
	t0=$(bench_ticks ${bench_case_pids[$id]})
	w0=$(date +%s.%N)
	if ! timeout $((DURATION + OMIT + 30)) ip netns exec "$bench_c" \
		iperf3 -c "${bench_addr[$id]}" -t "$DURATION" -O "$OMIT" -P "$p" $rev -J >"$bench_out/iperf/$name.json"; then
		bench_die "iperf3 $name failed: $(head -c 2000 "$bench_out/iperf/$name.json")"
	fi
	w1=$(date +%s.%N)
	# shellcheck disable=SC2086
	t1=$(bench_ticks ${bench_case_pids[$id]})
	if [ -n "${bench_case_pids[$id]}" ]; then
		echo "$((t1 - t0)) $(getconf CLK_TCK) $(awk -v a="$w0" -v b="$w1" 'BEGIN {print b - a}')" >"$bench_out/cpu/$name"
	fi
	bench_log "$name: $(grep -A8 '"sum_received"' "$bench_out/iperf/$name.json" | awk -F'[:,]' '/bits_per_second/ {printf "%.0f Mbit/s", $2 / 1e6; exit}')"
}

# bench_throughput runs every round of every path, streams and direction,
# interleaved so that drift hits every path alike.
bench_throughput() {
	local r id p dir
	for ((r = 1; r <= REPS; r++)); do
		for id in "${bench_ids[@]}"; do
			for p in $STREAMS; do
				for dir in $DIRS; do
					bench_iperf "$id" "$p" "$dir" "$r"
				done
			done
		done
	done
}

# bench_ping PHASE measures ping latency over every path: one pinglat
# run sends PING_COUNT requests to every path, to the paths in turn, one
# request every PING_INTERVAL, so that the machine's other work hits every
# path alike.
bench_ping() {
	local phase=$1 id addrs=() i=0 line
	[ -x "$bench_bin/pinglat" ] || bench_build ./bench/cmd/pinglat
	for id in "${bench_ids[@]}"; do
		addrs+=("${bench_addr[$id]}")
	done
	ip netns exec "$bench_c" "$bench_bin/pinglat" -count "$PING_COUNT" -interval "${PING_INTERVAL}s" \
		"${addrs[@]}" >"$bench_work/ping.$phase.json"
	while IFS= read -r line; do
		id=${bench_ids[$i]}
		echo "$line" >"$bench_out/ping/$id.$phase.json"
		bench_log "ping $id $phase: $line"
		i=$((i + 1))
	done <"$bench_work/ping.$phase.json"
	[ "$i" = "${#bench_ids[@]}" ] || bench_die "pinglat answered for $i of ${#bench_ids[@]} paths"
}

# bench_rss ID NAME PID records the peak RSS of process PID.
bench_rss() {
	local kb
	kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$3/status")
	echo "$2 $kb" >>"$bench_out/rss/$1"
}

# bench_iperf_server starts iperf3's server in the server namespace.
bench_iperf_server() {
	bench_start iperf3 "$bench_s" iperf3 -s --forceflush
	bench_wait_for iperf3 "Server listening" 10
}

# bench_report ANCHOR prints the tables and keeps them in the results.
bench_report() {
	[ -x "$bench_bin/benchreport" ] || bench_build ./bench/cmd/benchreport
	"$bench_bin/benchreport" -anchor "$1" "$bench_out" | tee "$bench_out/report.md"
}
