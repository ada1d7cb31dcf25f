#!/usr/bin/env bash
# bench/compare.sh — Weir and Mosquitto side by side on this machine.
#
# Installs Debian's mosquitto if it is missing, builds weir and weir-bench,
# and runs the same weir-bench scenarios against Mosquitto and Weir
# (durability none, and process where it matters), interleaved: for each
# repetition, for each case, each broker in turn. Every run gets a freshly
# started broker (so peak RSS and CPU belong to that run alone), on its own
# loopback port with its own config and data directory. With PIN (default
# on machines with 2+ CPUs) the broker runs on CPU $BROKER_CPU and the
# loader on CPU $LOADER_CPU.
#
# The results go to stdout and into docs/benchmarks.md, between the
# "compare.sh" markers (the text around them is kept).
#
# Environment:
#   REPS=3        repetitions (medians are reported)
#   BUDGET=540    seconds; a repetition that would not fit is skipped, and
#                 no run goes on past BUDGET+60 s (so `make bench` stays
#                 under about 10 minutes, builds included)
#   PIN=auto      auto | yes | no
#   BROKER_CPU=0 LOADER_CPU=1
#   CASES="..."   subset of: fanin-q0 fanin-q1 fanin-q2 paced-q1 fanout-q0
#                 fanout-q1 latency-q1 conns idle backlog
#   OUT=docs/benchmarks.md   ("" or - : do not write it)
#   GO=go
#
# Only loopback addresses are used; every run is bounded by weir-bench's
# -timeout and by the budget.
set -euo pipefail

REPS=${REPS:-3}
BUDGET=${BUDGET:-540}
PIN=${PIN:-auto}
BROKER_CPU=${BROKER_CPU:-0}
LOADER_CPU=${LOADER_CPU:-1}
ALL_CASES="fanin-q0 fanin-q1 fanin-q2 paced-q1 fanout-q0 fanout-q1 latency-q1 conns idle backlog"
CASES=${CASES:-$ALL_CASES}
OUT=${OUT-docs/benchmarks.md}
GO=${GO:-go}
RUN_TIMEOUT=120 # seconds, per weir-bench run
GRACE=60        # a started repetition may overrun BUDGET by this much, no more

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d /tmp/weir-compare.XXXXXX)
results=$work/results.jsonl
: >"$results"
bpid=""

. "$root/bench/lib.sh"

cleanup() {
	if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
		kill -KILL "$bpid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

# --- Mosquitto ---------------------------------------------------------
mosq=$(command -v mosquitto || true)
[ -z "$mosq" ] && [ -x /usr/sbin/mosquitto ] && mosq=/usr/sbin/mosquitto
if [ -z "$mosq" ]; then
	log "installing Debian package mosquitto"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
	mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
fi
mosq_version=$("$mosq" -h 2>/dev/null | head -1 || true)

# --- build -------------------------------------------------------------
log "building weir and weir-bench"
CGO_ENABLED=0 $GO build -trimpath -o "$work/weir" ./cmd/weir
CGO_ENABLED=0 $GO build -trimpath -o "$work/weir-bench" ./cmd/weir-bench
bench=$work/weir-bench

# Enough file descriptors for 10,000 connections on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)

# --- CPU pinning -------------------------------------------------------
ncpu=$(nproc)
pin_asked=$PIN
if [ "$PIN" = auto ]; then
	if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then PIN=yes; else PIN=no; fi
fi
broker_pin=() loader_pin=()
if [ "$PIN" = yes ]; then
	broker_pin=(taskset -c "$BROKER_CPU")
	loader_pin=(taskset -c "$LOADER_CPU")
fi

# --- ports -------------------------------------------------------------
pick_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 10000))
		if port_free "$p" && [ "$p" != "${1:-}" ]; then
			echo "$p"
			return
		fi
	done
	log "no free loopback port found"
	exit 1
}
mport=$(pick_port)
wport=$(pick_port "$mport")

# --- broker configs ----------------------------------------------------
mosq_conf "$mport" false "$work/mosquitto-data" >"$work/mosquitto.conf"
mosq_conf "$mport" true "$work/mosquitto-data" >"$work/mosquitto-persist.conf"
weir_conf "$wport" none "$work/weir-data" >"$work/weir-none.yaml"
weir_conf "$wport" process "$work/weir-data" >"$work/weir-process.yaml"

# --- broker lifecycle --------------------------------------------------
port=""
start_broker() { # variant [keep]: keep the data directory
	local v=$1 keep=${2:-}
	[ -n "$keep" ] || rm -rf "$work/weir-data" "$work/mosquitto-data"
	mkdir -p "$work/mosquitto-data"
	case $v in
	mosquitto | mosquitto-persist)
		port=$mport
		"${broker_pin[@]}" "$mosq" -c "$work/$v.conf" >>"$work/$v.log" 2>&1 &
		;;
	weir-none | weir-process)
		port=$wport
		"${broker_pin[@]}" "$work/weir" -config "$work/$v.yaml" >>"$work/$v.log" 2>&1 &
		;;
	esac
	bpid=$!
	for _ in $(seq 200); do
		if ! port_free "$port"; then return 0; fi
		kill -0 "$bpid" 2>/dev/null || break
		sleep 0.05
	done
	log "broker $v did not start; its log:"
	tail -20 "$work/$v.log" >&2
	exit 1
}
stop_broker() {
	stop_pid "$bpid" 300
	bpid=""
}
load() { # case variant weir-bench flags...
	local c=$1 v=$2 left
	shift 2
	# Every run ends by RUN_TIMEOUT and by the hard deadline, whichever
	# comes first; past the deadline runs are skipped.
	left=$((deadline - $(date +%s)))
	if [ "$left" -lt 5 ]; then
		log "    ($c against $v skipped: past the hard deadline of BUDGET+${GRACE}s)"
		return
	fi
	[ "$left" -lt "$RUN_TIMEOUT" ] || left=$RUN_TIMEOUT
	if ! "${loader_pin[@]}" "$bench" -addr "127.0.0.1:$port" -pid "$bpid" -case "$c" -label "$v" \
		-timeout "${left}s" -idle 5s "$@" >>"$results" 2>>"$work/bench.log"; then
		log "    ($c against $v reported errors or timed out: see $work/bench.log)"
	fi
}

# --- cases -------------------------------------------------------------
variants_of() {
	case $1 in
	fanin-q1 | paced-q1) echo mosquitto weir-none weir-process ;;
	idle) echo mosquitto weir-none weir-process ;;
	backlog) echo mosquitto-persist weir-process ;;
	*) echo mosquitto weir-none ;;
	esac
}
run_case() { # case variant
	local c=$1 v=$2
	log "  $c against $v"
	if [ "$c" = backlog ]; then
		# Fill an offline persistent session, restart the broker (SIGTERM,
		# start again on the same data), drain it.
		start_broker "$v"
		load backlog-fill "$v" -scenario backlog -phase fill -msgs 50000
		stop_broker
		start_broker "$v" keep
		load backlog "$v" -scenario backlog -phase drain -msgs 50000
		stop_broker
		return
	fi
	start_broker "$v"
	# shellcheck disable=SC2046
	load "$c" "$v" $(flags_of "$c")
	stop_broker
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
deadline=$((start + BUDGET + GRACE))
done_reps=0
last_rep=0
for rep in $(seq "$REPS"); do
	elapsed=$(($(date +%s) - start))
	if [ "$rep" -gt 1 ] && [ $((elapsed + last_rep)) -gt "$BUDGET" ]; then
		log "stopping after $done_reps repetition(s): another would pass BUDGET=${BUDGET}s"
		break
	fi
	rep_start=$(date +%s)
	log "repetition $rep of $REPS"
	for c in $CASES; do
		for v in $(variants_of "$c"); do
			run_case "$c" "$v"
		done
	done
	last_rep=$(($(date +%s) - rep_start))
	done_reps=$rep
done
total=$(($(date +%s) - start))
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

report=$("$bench" -report "$results")
printf '%s\n' "$report"
log "raw results: $results ($total s)"

if [ -z "$OUT" ] || [ "$OUT" = - ]; then exit 0; fi

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
pin_text="not pinned"
[ "$PIN" = yes ] && pin_text="broker on CPU $BROKER_CPU, loader on CPU $LOADER_CPU (taskset); Weir's GOMAXPROCS follows the affinity (1)"
cmd="REPS=$REPS BUDGET=$BUDGET PIN=$pin_asked"
[ "$CASES" = "$ALL_CASES" ] || cmd="$cmd CASES=\"$CASES\""
cmd="$cmd bash bench/compare.sh"
generated=$(
	cat <<EOF
<!-- compare.sh:begin — generated by bench/compare.sh; edits here are overwritten -->
Generated $(date -u '+%Y-%m-%d %H:%M UTC') at $(git describe --always --dirty 2>/dev/null || echo unknown) by
\`$cmd\` (\`make bench\` runs it with the defaults), $done_reps repetition(s) in $total s.

| machine | |
|---|---|
| CPUs (nproc) | $ncpu |
| CPU model | $cpu_model |
| memory | $mem |
| kernel | $(uname -r) |
| Go | $($GO env GOVERSION) |
| Mosquitto | $mosq_version (Debian package) |
| pinning | $pin_text |
| load average (1/5/15 min) at start → end | $load_start → $load_end |
| open files limit | $fd_limit |

$report
<!-- compare.sh:end -->
EOF
)
if [ -f "$OUT" ] && grep -q '<!-- compare.sh:begin' "$OUT"; then
	printf '%s\n' "$generated" >"$work/generated.md"
	awk -v gen="$work/generated.md" '
		/<!-- compare.sh:begin/ { while ((getline l < gen) > 0) print l; skip = 1; next }
		/<!-- compare.sh:end/ { skip = 0; next }
		!skip { print }' "$OUT" >"$work/out.md"
	cp "$work/out.md" "$OUT"
else
	mkdir -p "$(dirname "$OUT")"
	{
		printf '# Benchmarks\n\n'
		printf '%s\n' "$generated"
	} >"$OUT"
fi
log "wrote $OUT"
