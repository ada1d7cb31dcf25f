# bench/lib.sh — what bench/compare.sh and bench/floor.sh share: the two
# brokers' configurations and the weir-bench flags of each case, so that
# the floor's runs are the same as make bench's. Sourced, not run.

log() { printf '%s\n' "$*" >&2; }

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_pid PID TICKS: SIGTERM, wait up to TICKS × 50 ms for a graceful
# exit (a broker saving its state), then SIGKILL, and reap it.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq "$2"); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# mosq_conf PORT PERSIST(true|false) DATA_DIR: Mosquitto's configuration.
mosq_conf() {
	cat <<EOF
listener $1 127.0.0.1
allow_anonymous true
user $(id -un)
persistence $2
persistence_location $3/
autosave_interval 0
max_queued_messages 10000000
max_inflight_messages 100
max_connections -1
log_dest stderr
log_type error
log_type warning
EOF
}

# weir_conf PORT DURABILITY DATA_DIR: Weir's configuration.
weir_conf() {
	cat <<EOF
listeners:
  tcp: "127.0.0.1:$1"
  websocket: "-"
limits:
  max_connections: 20000
  max_inflight: 100
  max_queued_messages: 10000000
  max_queued_bytes: 4GiB
  outbound_buffer_bytes: 256MiB
  slow_consumer_timeout: 5m
log:
  level: warn
durability: $2
data_dir: "$3"
EOF
}

# flags_of CASE: the weir-bench flags of a case.
flags_of() {
	case $1 in
	fanin-q0) echo -scenario fanin -pubs 100 -msgs 10000 -qos 0 ;;
	fanin-q1) echo -scenario fanin -pubs 100 -msgs 1000 -qos 1 ;;
	fanin-q2) echo -scenario fanin -pubs 100 -msgs 500 -qos 2 ;;
	paced-q1) echo -scenario latency -rate 20000 -duration 10s -qos 1 ;;
	fanout-q0) echo -scenario fanout -subs 1000 -msgs 300 -qos 0 ;;
	fanout-q1) echo -scenario fanout -subs 1000 -msgs 100 -qos 1 ;;
	latency-q1) echo -scenario latency -rate 5000 -duration 5s -qos 1 ;;
	conns) echo -scenario conns -conns 10000 -hold 2s ;;
	idle) echo -scenario conns -conns 0 -hold 2s ;;
	esac
}
