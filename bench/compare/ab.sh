#!/usr/bin/env bash
# ab.sh measures two builds of Subordinate against each other in one run:
# the same workload against `serve` of commit A and of commit B, runs
# alternated (A, B, A, B, ...) so that the machine's drift weighs on both,
# and prints the server CPU per operation of every run and the medians.
# It is how BENCHMARKS.md compares a change with the code before it.
#
#   bench/compare/ab.sh [flags] A B
#
#   A, B          commits (or anything git rev-parse takes); each is built
#                 into a temporary directory from a worktree
#   --workers N   serve --workers (default 2)
#   --mode M      bench --mode: pingpong, connect, idle (default pingpong);
#                 idle holds --conns connections open (bench/compare/
#                 idleconns) and reports the growth of the workers' RSS per
#                 connection, in bytes
#   --tls         a tls:// listener with a throwaway self-signed
#                 certificate, and TLS clients
#   --forward F   serve --forward: handoff or relay (default: serve's)
#   --size B      request size (default 64)
#   --linger0     connect mode: close by reset (SO_LINGER 0)
#   --conns N     connections (default 16; idle: 3000)
#   --runs R      runs per build (default 5)
#   --secs S      seconds per run (default 3)
#   --pin P       on: servers on the last CPU, the load generator on the
#                 first (taskset); off: no pinning (default off)
#
# Server CPU per operation is utime + stime of every server process, from
# /proc, over the run, divided by the requests (connections in connect
# mode) the load generator counted. Linux only.
set -euo pipefail

workers=2 mode=pingpong tls=0 size=64 conns="" runs=5 secs=3 pin=off linger=() forward=()
while [ $# -gt 2 ]; do
	case "$1" in
	--workers) workers=$2; shift ;;
	--mode) mode=$2; shift ;;
	--tls) tls=1 ;;
	--size) size=$2; shift ;;
	--linger0) linger=(--linger0) ;;
	--forward) forward=(--forward "$2"); shift ;;
	--conns) conns=$2; shift ;;
	--runs) runs=$2; shift ;;
	--secs) secs=$2; shift ;;
	--pin) pin=$2; shift ;;
	*) echo "ab.sh: unknown flag $1" >&2; exit 2 ;;
	esac
	shift
done
[ $# -eq 2 ] || { echo "usage: bench/compare/ab.sh [flags] A B" >&2; exit 2; }
[ -n "$conns" ] || { conns=16; [ "$mode" = idle ] && conns=3000; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; git -C "$repo" worktree remove --force "$tmp/wt" 2>/dev/null || true; rm -rf "$tmp"' EXIT

build() { # build REV NAME
	git -C "$repo" worktree add -q --detach "$tmp/wt" "$1"
	(cd "$tmp/wt" && go build -o "$tmp/$2" ./cmd/subordinate)
	git -C "$repo" worktree remove --force "$tmp/wt"
}
build "$1" a
build "$2" b
(cd "$here" && go build -o "$tmp/idleconns" ./idleconns)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

listen=tcp tlsflags=() benchtls=() idletls=()
if [ $tls = 1 ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=localhost 2>/dev/null
	listen=tls tlsflags=(--cert "$tmp/cert.pem" --key "$tmp/key.pem") benchtls=(--tls --tls-insecure) idletls=(-tls)
fi
spin=() cpin=()
if [ "$pin" = on ]; then
	spin=(taskset -c "$(($(nproc) - 1))") cpin=(taskset -c 0)
fi

cpu() { # cpu PID: clock ticks of the process and its children
	local t=0 p u s
	for p in $1 $(pgrep -P "$1"); do
		read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat")
		t=$((t + u + s))
	done
	echo $t
}
rss() { # rss PID: resident KiB of the process's children (the workers)
	local t=0 p
	for p in $(pgrep -P "$1"); do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done
	echo $t
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

one() { # one BIN PORT: one run, prints its figure
	"${spin[@]}" "$1" serve --workers "$workers" --handler echo --max-conns $((2 * conns + 1000)) \
		--listen "$listen://127.0.0.1:$2" "${tlsflags[@]}" "${forward[@]}" >/dev/null 2>&1 &
	local m=$! out
	sleep 1
	if [ "$mode" = idle ]; then
		local r0 r1
		r0=$(rss $m)
		coproc IDLE { "$tmp/idleconns" -addr "127.0.0.1:$2" -conns "$conns" "${idletls[@]}"; }
		read -r out <&"${IDLE[0]}"
		sleep 2
		r1=$(rss $m)
		exec {IDLE[1]}>&-
		wait "$IDLE_PID" 2>/dev/null || true
		awk -v a="$r0" -v b="$r1" -v n="$conns" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }'
	else
		local c0 c1 n
		c0=$(cpu $m)
		n=$("${cpin[@]}" "$tmp/b" bench --addr "127.0.0.1:$2" "${benchtls[@]}" --mode "$mode" --size "$size" "${linger[@]}" \
			--conns "$conns" --duration "${secs}s" --json | tail -1 | sed 's/.*"requests":\([0-9]*\).*/\1/')
		c1=$(cpu $m)
		awk -v t=$((c1 - c0)) -v r="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t * 1e6 / hz / r }'
	fi
	kill $m
	while kill -0 $m 2>/dev/null; do sleep 0.05; done
}

unit="server CPU µs per operation"
[ "$mode" = idle ] && unit="bytes of worker RSS per idle connection"
echo "ab.sh: $mode, $listen, $workers workers, $conns conns, pin $pin: $unit"
port=$((20000 + RANDOM % 20000))
as=() bs=()
for i in $(seq "$runs"); do
	port=$((port + 1)); as+=("$(one "$tmp/a" $port)")
	port=$((port + 1)); bs+=("$(one "$tmp/b" $port)")
	echo "run $i: A ${as[-1]}  B ${bs[-1]}"
done
a=$(printf '%s\n' "${as[@]}" | median)
b=$(printf '%s\n' "${bs[@]}" | median)
echo "median: A ($1) $a  B ($2) $b  B ÷ A $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')"
