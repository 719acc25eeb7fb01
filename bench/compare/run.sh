#!/usr/bin/env bash
# run.sh measures Subordinate against its peers side by side, in one run,
# and writes the figures behind BENCHMARKS.md. By default (--pin both) it
# measures everything twice, servers and clients pinned to different CPUs,
# then unpinned:
#
#   bench/compare/results/table.md       what BENCHMARKS.md shows: the issue-9
#                                        summary, then the pinned and the
#                                        unpinned tables
#   bench/compare/results/issue9.md      the issue-9 summary alone: every
#                                        target, pinned and unpinned, and the
#                                        forwarded-against-local derivation
#   bench/compare/results/pinned/        results.json (every run of every
#   bench/compare/results/unpinned/      cell, and medians), results.csv (the
#                                        medians), table.md, issue9.md and
#                                        chart.svg (throughput, p99 and CPU
#                                        per request) of each setting
#
# With --pin on or --pin off there is one setting and those files are in
# bench/compare/results/ itself.
#
# Usage (from anywhere in the repository, as root on a fresh Debian 12):
#
#   bench/compare/run.sh                 full run: every row, pinned and
#                                        unpinned, 3 runs of 8 s per cell
#                                        (about 25 minutes on 2 CPUs)
#   bench/compare/run.sh --runs 5 --duration 3s --idle-runs 3
#                                        the same with more, shorter runs and
#                                        3 idle-memory measurements per row:
#                                        steadier medians for the issue-9
#                                        ratios (about 18 minutes on 2 CPUs)
#   bench/compare/run.sh --quick         smoke test: 1 run of 1 s per cell,
#                                        results in a temporary directory
#   bench/compare/run.sh [--out DIR] [--pin both|on|off] [--no-pin] [runner flags...]
#   bench/compare/run.sh --issue13 [--runs 5 --duration 3s]
#                                        issue 13's suite instead of the peers:
#                                        server CPU per connection (connect per
#                                        request) and per ping-pong request of
#                                        serve --key-from frame, client-ip,
#                                        http-header:X-Key and sni (TLS), each
#                                        with 1 and N workers, and the preamble
#                                        over TLS with N, pinned and unpinned,
#                                        as ratios to the preamble; into
#                                        bench/compare/results/issue13/ (the
#                                        same files, issue13.md for issue9.md),
#                                        and the summary copied to
#                                        bench/compare/results/issue13.md
#                                        (about 15 minutes on 2 CPUs with the
#                                        default 3 runs of 8 s)
#   bench/compare/run.sh --issue14 [--runs 5 --duration 3s]
#                                        issue 14's suite: N nodes of 1 worker
#                                        on this machine (clients on node 0)
#                                        against 1 node of N workers and
#                                        HAProxy routing by key to N 1-worker
#                                        servers, ping-pong and connect per
#                                        request, pinned and unpinned; into
#                                        bench/compare/results/issue14/ and
#                                        bench/compare/results/issue14.md
#                                        (HAProxy installed if missing)
#
# --pin both (the default) measures pinned and then unpinned, each setting a
# complete run of its own (rows interleaved within it); --pin on measures
# pinned only, --pin off (or --no-pin) unpinned only. Pinning needs 2 or
# more CPUs; on 1 CPU every run is unpinned.
#
# Runner flags (see `cd bench/compare && go run ./runner -h`) pass through, e.g.
# --runs 5 --duration 10s --rows gnet,subN --workloads pingpong. Rows: gnet,
# sub1, subN (N workers, --forward handoff), subN-relay (N workers, --forward
# relay), haproxy, node, std. Workloads: pingpong, pipeline, connect,
# connect0 (connect per request closed by reset).
#
# It installs what is missing with apt-get (haproxy; nodejs), builds the Go
# binaries (Go 1.26 must be on PATH or in /usr/local/go/bin: Debian's golang
# package is too old for this module), raises the open-files limit for the
# 10 000 idle connections, and, when pinning on a machine with 2 or more
# CPUs, pins the servers and the load generator to different CPUs with
# taskset (the first half of the CPUs for the clients, the rest for the
# servers) so that the client's own CPU use does not blur the servers'
# figures.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

quick=0
issue13=0
suite="" # issue13, issue14, or "" for the peers
pin=both
out=""
pass=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1; pass+=("--quick") ;;
	--issue13 | -issue13) issue13=1; suite=issue13; pass+=("-issue13") ;;
	--issue14 | -issue14) suite=issue14; pass+=("-issue14") ;;
	--no-pin) pin=off ;;
	--pin) pin="${2:-}"; shift ;;
	--pin=*) pin="${1#--pin=}" ;;
	--out) out="$2"; shift ;;
	--out=*) out="${1#--out=}" ;;
	*) pass+=("$1") ;;
	esac
	shift
done
case "$pin" in
on | off | both) ;;
*) echo "run.sh: --pin $pin: want both, on or off" >&2; exit 2 ;;
esac
command_line="bench/compare/run.sh${pass[*]:+ ${pass[*]}}"
[ "$pin" != both ] && command_line="$command_line --pin $pin"

# --- what the run needs -----------------------------------------------------
need=()
if [ $issue13 = 0 ]; then # issue 13's suite runs Subordinate only
	command -v haproxy >/dev/null || need+=(haproxy)
fi
if [ -z "$suite" ]; then
	command -v node >/dev/null || need+=(nodejs)
fi
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "run.sh: missing ${need[*]}; run as root or install them" >&2
		exit 1
	fi
	echo "run.sh: installing ${need[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Debian package enables a system HAProxy on port 80 where systemd runs;
# the runner starts its own instances and does not need it.
if ! command -v go >/dev/null; then
	export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || { echo "run.sh: Go 1.26 is required (https://go.dev/dl/)" >&2; exit 1; }

# --- build -------------------------------------------------------------------
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
echo "run.sh: building into $bin" >&2
go build -o "$bin/" ./cmd/subordinate
# The rig is a module of its own (bench/compare/go.mod), built against this
# checkout's Subordinate.
(cd bench/compare && go build -o "$bin/" ./gnetecho ./stdecho ./idleconns ./runner ./chart)

# --- limits and pinning --------------------------------------------------------
# 10 000 idle connections need that many descriptors in the client and in
# each server, and HAProxy needs two per proxied connection.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "run.sh: open files limit $(ulimit -n)" >&2

cpu_flags=()
ncpu="$(nproc)"
if [ "$pin" != off ] && [ "$ncpu" -lt 2 ]; then
	echo "run.sh: $ncpu CPU: nothing to pin to, measuring unpinned only" >&2
	pin=off
fi
if [ "$pin" != off ]; then
	half=$((ncpu / 2))
	client_cpus="0-$((half - 1))"
	server_cpus="$half-$((ncpu - 1))"
	[ "$half" = 1 ] && client_cpus=0
	[ "$((ncpu - half))" = 1 ] && server_cpus="$half"
	cpu_flags=(-client-cpus "$client_cpus" -server-cpus "$server_cpus")
	echo "run.sh: clients on CPUs $client_cpus, servers on CPUs $server_cpus" >&2
fi

# --- run -----------------------------------------------------------------------
if [ -z "$out" ]; then
	if [ $quick = 1 ]; then
		out="$(mktemp -d /tmp/compare-quick-XXXXXX)"
	elif [ -n "$suite" ]; then
		out="$here/results/$suite"
	else
		out="$here/results"
	fi
fi
mkdir -p "$out"
if [ "$out" = "$here/results" ]; then
	# The repository's results are those of the last run only: no file of a
	# previous run (or of the other layout) is left to be mistaken for one.
	# tls.md comes from tlscmp, not from here.
	rm -rf "$out/pinned" "$out/unpinned" "$out/logs"
	rm -f "$out/results.json" "$out/results.csv" "$out/table.md" "$out/issue9.md" "$out/chart.svg"
fi
if [ -n "$suite" ] && [ "$out" = "$here/results/$suite" ]; then
	rm -rf "$out/pinned" "$out/unpinned" "$out/logs"
	rm -f "$out/results.json" "$out/results.csv" "$out/table.md" "$out/$suite.md" "$out/chart.svg"
fi
"$bin/runner" -bin "$bin" -out "$out" -node-script "$here/nodecluster/server.js" \
	-command "$command_line" -pin "$pin" "${cpu_flags[@]}" "${pass[@]}"
sets=("$out")
[ "$pin" = both ] && sets=("$out/pinned" "$out/unpinned")
for d in "${sets[@]}"; do
	"$bin/chart" -in "$d/results.json" -out "$d/chart.svg"
	# The logs of the servers are for debugging a run, not for the repository.
	if [ "$out" = "$here/results" ] || { [ -n "$suite" ] && [ "$out" = "$here/results/$suite" ]; }; then
		rm -rf "$d/logs"
	fi
done
if [ -n "$suite" ] && [ "$out" = "$here/results/$suite" ]; then
	cp "$out/$suite.md" "$here/results/$suite.md"
fi
summary=issue9.md
[ -n "$suite" ] && summary=$suite.md
echo "run.sh: results in $out (table.md, $summary; results.json, results.csv, chart.svg in ${sets[*]})" >&2
cat "$out/table.md"
