#!/usr/bin/env bash
# bench/floor.sh — the paced QoS 1 cases of issue 6 against Mosquitto, Weir
# and the floor relay (bench/floor: the least work any broker must do for
# this load), interleaved, with the pinning of bench/compare.sh.
#
# For each repetition, for each case (paced-q1: 20,000 msg/s for 10 s;
# latency-q1: 5,000 msg/s for 5 s), each variant in turn gets a freshly
# started broker on CPU $BROKER_CPU and weir-bench on CPU $LOADER_CPU.
# Prints the raw JSON lines' path and a markdown table of medians with
# (min–max): broker CPU µs per delivered message, p50/p99/p99.9 latency.
#
# Environment:
#   REPS=3
#   VARIANTS="mosquitto weir floor floor-runtime"
#     mosquitto      Debian's mosquitto, compare.sh's configuration
#     weir           this tree's weir, durability none
#     weir-before    the weir binary at $WEIR_BEFORE (an A/B of a change)
#     floor          bench/floor, system calls unseen by the Go runtime
#     floor-runtime  bench/floor -syscalls runtime
#   CASES="paced-q1 latency-q1"
#   BROKER_CPU=0 LOADER_CPU=1
#   RT=0          1: broker and loader run SCHED_FIFO (chrt -f 10), so that
#                 the other tasks of a shared machine cannot preempt them
#                 (what a quiet machine would give); the kernel's RT
#                 throttling still leaves 5 % of each CPU to the others
#
# Installs Debian's mosquitto and jq if they are missing. Loopback only;
# every run is bounded by weir-bench's -timeout, every
# broker is stopped after its run, and the floor exits by itself after
# 2 minutes whatever happens.
set -euo pipefail

REPS=${REPS:-3}
VARIANTS=${VARIANTS:-"mosquitto weir floor floor-runtime"}
CASES=${CASES:-"paced-q1 latency-q1"}
BROKER_CPU=${BROKER_CPU:-0}
LOADER_CPU=${LOADER_CPU:-1}
RT=${RT:-0}
GO=${GO:-go}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d /tmp/weir-floor.XXXXXX)
results=$work/results.jsonl
: >"$results"
bpid=""
. "$root/bench/lib.sh"
cleanup() { [ -z "$bpid" ] || kill -KILL "$bpid" 2>/dev/null || true; }
trap cleanup EXIT

# Debian's mosquitto for the broker, jq for the results.
missing=""
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v jq >/dev/null || missing="$missing jq"
if [ -n "$missing" ]; then
	log "installing Debian packages:$missing"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
log "building weir, weir-bench and floor into $work"
CGO_ENABLED=0 $GO build -trimpath -o "$work/weir" ./cmd/weir
CGO_ENABLED=0 $GO build -trimpath -o "$work/weir-bench" ./cmd/weir-bench
CGO_ENABLED=0 $GO build -trimpath -o "$work/floor" ./bench/floor

port=$((20000 + RANDOM % 10000))
while ! port_free "$port"; do port=$((20000 + RANDOM % 10000)); done

mosq_conf "$port" false "$work/mosquitto-data" >"$work/mosquitto.conf"
weir_conf "$port" none "$work/weir-data" >"$work/weir.yaml"

pin=(taskset -c "$BROKER_CPU")
lpin=(taskset -c "$LOADER_CPU")
if [ "$RT" = 1 ]; then
	pin=(chrt -f 10 "${pin[@]}")
	lpin=(chrt -f 10 "${lpin[@]}")
fi
start_broker() {
	local v=$1
	case $v in
	mosquitto) "${pin[@]}" "$mosq" -c "$work/mosquitto.conf" >>"$work/$v.log" 2>&1 & ;;
	weir) "${pin[@]}" "$work/weir" -config "$work/weir.yaml" >>"$work/$v.log" 2>&1 & ;;
	weir-before) "${pin[@]}" "${WEIR_BEFORE:?WEIR_BEFORE=path of the weir binary to compare}" -config "$work/weir.yaml" >>"$work/$v.log" 2>&1 & ;;
	floor) "${pin[@]}" "$work/floor" -addr "127.0.0.1:$port" -timeout 2m >>"$work/$v.log" 2>&1 & ;;
	floor-runtime) "${pin[@]}" "$work/floor" -addr "127.0.0.1:$port" -timeout 2m -syscalls runtime >>"$work/$v.log" 2>&1 & ;;
	*)
		log "unknown variant $v"
		exit 2
		;;
	esac
	bpid=$!
	for _ in $(seq 200); do
		port_free "$port" || return 0
		sleep 0.05
	done
	log "$v did not start: see $work/$v.log"
	exit 1
}
stop_broker() {
	stop_pid "$bpid" 100
	bpid=""
	# the next broker binds the same port
	for _ in $(seq 100); do
		port_free "$port" && return 0
		sleep 0.05
	done
}
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq "$REPS"); do
	log "repetition $rep of $REPS"
	for c in $CASES; do
		for v in $VARIANTS; do
			log "  $c against $v"
			start_broker "$v"
			# shellcheck disable=SC2046
			load=$(cut -d' ' -f1 /proc/loadavg)
			out=$("${lpin[@]}" "$work/weir-bench" -addr "127.0.0.1:$port" -pid "$bpid" -case "$c" -label "$v" \
				-timeout 60s -idle 5s $(flags_of "$c") 2>>"$work/bench.log") ||
				log "    ($c against $v failed: see $work/bench.log)"
			# The broker's read and write system calls since it started
			# (connection set-up included: a few dozen).
			r=$(awk '/^syscr/ {print $2}' "/proc/$bpid/io" 2>/dev/null || echo 0)
			w=$(awk '/^syscw/ {print $2}' "/proc/$bpid/io" 2>/dev/null || echo 0)
			[ -z "$out" ] || jq -c --argjson r "${r:-0}" --argjson w "${w:-0}" --argjson l "$load" --argjson rep "$rep" --argjson rt "$RT" \
				'. + {broker_syscr: $r, broker_syscw: $w, loadavg1: $l, rep: $rep, rt: $rt}' <<<"$out" >>"$results"
			stop_broker
		done
	done
done
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
log "raw results: $results; broker logs (the floor's system calls per message): $work/*.log"

# Medians with (min–max) per case and variant.
jq -rs --arg variants "$VARIANTS" '
	def med: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
	def fmt2(f): map(f) | "\(med | . * 100 | round / 100) (\(min | . * 100 | round / 100)–\(max | . * 100 | round / 100))";
	def fmt(f): map(f) | "\(med | . * 10 | round / 10) (\(min | . * 10 | round / 10)–\(max | . * 10 | round / 10))";
	"| case | variant | runs | delivered msg/s | broker CPU µs/msg | reads/msg | writes/msg | p50 µs | p99 µs | p99.9 µs | load avg |",
	"|---|---|---|---|---|---|---|---|---|---|---|",
	(group_by(.case)[] as $g | ($variants | split(" "))[] as $v
	 | [$g[] | select(.label == $v)] | select(length > 0)
	 | "| \(.[0].case) | \($v) | \(length) | \(fmt(.delivered_msgs_per_s)) | \(fmt(.broker.cpu_s * 1e6 / .delivered)) | \(fmt2(.broker_syscr / .delivered)) | \(fmt2(.broker_syscw / .delivered)) | \(fmt(.latency.p50_us)) | \(fmt(.latency.p99_us)) | \(fmt(.latency.p999_us)) | \(fmt(.loadavg1 // 0)) |")
' "$results"
