#!/usr/bin/env bash
# floor.sh measures what N worker processes cost on this machine when no
# connection is forwarded at all, beside 1 worker and N workers handing
# off: the floor under the issue-9 ratios.
#
#   1 worker     subordinate serve --workers 1, one load generator
#   N x 1        N independent `serve --workers 1` servers, each on its own
#                port with its own load generator (conns / N each): N
#                processes, no shared listener, nothing forwarded
#   N handoff    subordinate serve --workers N (--forward handoff), one load
#                generator: the shared listener, and (N-1)/N of the
#                connections handed off
#
# Server CPU per request (utime + stime of every server process, from
# /proc, over the measured run) is printed per run and as the median, for
# ping-pong and connect per request (reset), pinned (servers on the last
# CPU, clients on the first) and unpinned.
#
# Usage: bench/compare/floor.sh [RUNS] [SECONDS]   (defaults 5 and 3; Linux)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."
runs=${1:-5}
secs=${2:-3}
n=2
bin=$(mktemp -d)/subordinate
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/subordinate
last=$(( $(nproc) - 1 ))

# cpu PID...: clock ticks used by the processes and their children.
cpu() {
	local t=0 p u s
	for m in "$@"; do
		for p in $m $(pgrep -P "$m"); do
			read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat")
			t=$((t + u + s))
		done
	done
	echo $t
}

# load PORT CONNS MODE: requests done by one load generator.
load() {
	$cpin "$bin" bench --addr "127.0.0.1:$1" --mode "$3" --conns "$2" --linger0 \
		--duration "${secs}s" --json | tail -1 | sed 's/.*"requests":\([0-9]*\).*/\1/'
}

# serve WORKERS PORT: starts a server, echoes the master's pid.
serve() {
	$spin "$bin" serve --workers "$1" --handler echo --listen "tcp://127.0.0.1:$2" >/dev/null 2>&1 &
	echo $!
}

# ready: the workers are up (a probe connection would be measured too).
ready() { sleep 1; }

# stop PID...: SIGTERM, then wait until the processes are gone, so that
# a draining server does not share the CPU with the next measurement.
stop() {
	kill "$@" 2>/dev/null || true
	for p in "$@"; do
		while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
	done
}

us() { awk -v t="$1" -v r="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1e6 / hz / r }'; }

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

port=7700
echo "| pinning | workload | 1 worker | $n x 1 worker | $n workers, handoff | $n x 1 ÷ 1 | handoff ÷ $n x 1 |"
echo "|---|---|--:|--:|--:|--:|--:|"
for pin in pinned unpinned; do
	spin=""
	cpin=""
	if [ $pin = pinned ]; then
		spin="taskset -c $last"
		cpin="taskset -c 0"
	fi
	for mode in pingpong connect; do
		conns=32
		[ $mode = connect ] && conns=16
		one=() split=() ho=()
		for _ in $(seq "$runs"); do
			port=$((port + 1)); m=$(serve 1 $port); ready
			c0=$(cpu "$m"); r=$(load $port $conns $mode); c1=$(cpu "$m"); stop "$m"
			one+=("$(us $((c1 - c0)) "$r")")

			ms=() ports=()
			for _ in $(seq $n); do port=$((port + 1)); ports+=($port); ms+=("$(serve 1 $port)"); done
			ready
			c0=$(cpu "${ms[@]}")
			tmp=$(mktemp -d) lp=()
			for p in "${ports[@]}"; do
				load "$p" $((conns / n)) $mode >"$tmp/$p" &
				lp+=($!)
			done
			wait "${lp[@]}"
			c1=$(cpu "${ms[@]}")
			r=$(cat "$tmp"/* | awk '{ s += $1 } END { print s }'); rm -rf "$tmp"
			stop "${ms[@]}"
			split+=("$(us $((c1 - c0)) "$r")")

			port=$((port + 1)); m=$(serve $n $port); ready
			c0=$(cpu "$m"); r=$(load $port $conns $mode); c1=$(cpu "$m"); stop "$m"
			ho+=("$(us $((c1 - c0)) "$r")")
			echo "$pin $mode run: 1 worker ${one[-1]}  $n x 1 ${split[-1]}  handoff ${ho[-1]}" >&2
		done
		a=$(printf '%s\n' "${one[@]}" | median)
		b=$(printf '%s\n' "${split[@]}" | median)
		c=$(printf '%s\n' "${ho[@]}" | median)
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' $pin $mode "$a" "$b" "$c" \
			"$(awk -v x="$b" -v y="$a" 'BEGIN { printf "%.2f", x / y }')" \
			"$(awk -v x="$c" -v y="$b" 'BEGIN { printf "%.2f", x / y }')"
	done
done
