# shellcheck shell=bash
# Process bookkeeping for bench/run: every process started here is
# recorded by PID and stopped by PID (never by name: other people's
# Unbound and dnsdist may run on this machine).

STARTED_PIDS=()

# start_bg LOG CMD...: run CMD in the background, output to LOG; the PID
# is left in $BG_PID.
start_bg() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 &
	BG_PID=$!
	STARTED_PIDS+=("$BG_PID")
}

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_all() {
	local pid
	for pid in "${STARTED_PIDS[@]}"; do
		stop_pid "$pid"
	done
	STARTED_PIDS=()
}

# cpu_ticks PID: user plus system time of the whole process (all its
# threads), in clock ticks. The command name, field 2, may hold spaces,
# so the fields are counted from the closing parenthesis.
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	# After "pid (comm) ", utime and stime are the 12th and 13th fields.
	awk '{print $12 + $13}' <<<"$stat"
}

# rss_kb PID [FIELD]: VmRSS (or VmHWM) in kB.
rss_kb() {
	awk -v f="${2:-VmRSS}:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# port_free ADDR PORT: nothing listens there over UDP or TCP.
port_free() {
	! ss -Hlnut "sport = :$2" | awk '{print $5}' | grep -qx "$1:$2"
}
