#!/usr/bin/env bash
# run.sh measures Subordinate against its peers side by side, in one run,
# and writes the figures behind BENCHMARKS.md:
#
#   bench/compare/results/results.json   every run of every cell, and medians
#   bench/compare/results/results.csv    the medians
#   bench/compare/results/table.md       the markdown tables
#   bench/compare/results/chart.svg      throughput, p99 and CPU per request
#
# Usage (from anywhere in the repository, as root on a fresh Debian 12):
#
#   bench/compare/run.sh                 full run (about 15 minutes on 2 CPUs)
#   bench/compare/run.sh --quick         smoke test: 1 run of 1 s per cell,
#                                        results in a temporary directory
#   bench/compare/run.sh [--out DIR] [--no-pin] [runner flags...]
#
# Runner flags (see `go run ./bench/compare/runner -h`) pass through, e.g.
# --runs 5 --duration 10s --rows gnet,subN --workloads pingpong.
#
# It installs what is missing with apt-get (haproxy; nodejs), builds the Go
# binaries (Go 1.26 must be on PATH or in /usr/local/go/bin: Debian's golang
# package is too old for this module), raises the open-files limit for the
# 10 000 idle connections, and, on a machine with 2 or more CPUs, pins the
# servers and the load generator to different CPUs with taskset (the first
# half of the CPUs for the clients, the rest for the servers) so that the
# client's own CPU use does not blur the servers' figures. --no-pin turns
# that off.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

quick=0
pin=1
out=""
pass=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1; pass+=("--quick") ;;
	--no-pin) pin=0 ;;
	--out) out="$2"; shift ;;
	--out=*) out="${1#--out=}" ;;
	*) pass+=("$1") ;;
	esac
	shift
done
command_line="bench/compare/run.sh${pass[*]:+ ${pass[*]}}"
[ $pin = 0 ] && command_line="$command_line --no-pin"

# --- what the run needs -----------------------------------------------------
need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v node >/dev/null || need+=(nodejs)
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
go build -o "$bin/" ./cmd/subordinate ./bench/compare/gnetecho ./bench/compare/stdecho \
	./bench/compare/idleconns ./bench/compare/runner ./bench/compare/chart

# --- limits and pinning --------------------------------------------------------
# 10 000 idle connections need that many descriptors in the client and in
# each server, and HAProxy needs two per proxied connection.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "run.sh: open files limit $(ulimit -n)" >&2

cpu_flags=()
ncpu="$(nproc)"
if [ $pin = 1 ] && [ "$ncpu" -ge 2 ]; then
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
	else
		out="$here/results"
	fi
fi
mkdir -p "$out"
"$bin/runner" -bin "$bin" -out "$out" -node-script "$here/nodecluster/server.js" \
	-command "$command_line" "${cpu_flags[@]}" "${pass[@]}"
"$bin/chart" -in "$out/results.json" -out "$out/chart.svg"
# The logs of the servers are for debugging a run, not for the repository.
if [ "$out" = "$here/results" ]; then
	rm -rf "$out/logs"
fi
echo "run.sh: results in $out (table.md, results.json, results.csv, chart.svg)" >&2
cat "$out/table.md"
