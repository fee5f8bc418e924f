# shellcheck shell=bash
# One measured dnsperf run and what is recorded around it, for bench/run.
# Each run writes OUT/rREPEAT/SCENARIO-TRANSPORT-PEER/ with dnsperf.txt
# (its output with -v: one line per query, with its latency) and
# metrics.env (the server's CPU ticks, RSS, upstream connections).

# warm FILE TRANSPORT ADDR SECONDS: light load before a measurement, so
# that upstream connections are open and first-query costs are paid.
warm() {
	dnsperf -m "$2" -s "$3" -p "$DNS_PORT" -d "$1" -l "$4" -c 4 -q 20 -t 3 >/dev/null 2>&1 || true
}

# sample PID FILE: every 0.5 s, the most connections to one upstream and
# the process's RSS, until killed.
sample() {
	while kill -0 "$1" 2>/dev/null; do
		sample_once "$1" "$2"
		sleep 0.5
	done
}

# sample_once PID FILE: one line of sample's, appended to FILE.
sample_once() {
	echo "$(upstream_conns) $(rss_kb "$1")" >>"$2"
}

# measure REPEAT SCENARIO TRANSPORT PEER PID FILE QPS_LIMIT RSS_IDLE_KB
# ACCEPTS_BEFORE_START: one dnsperf run at ADDR of PEER, the server
# process being PID (the responder's for the ceiling); ACCEPTS_BEFORE_START
# is "" when the responder does not count its accepts. QPS_LIMIT 0 is
# saturation. It leaves the QPS dnsperf reported in $LAST_QPS. With
# RESPONDER set (bench/run), the responder's CPU during the run is
# recorded too: on the load core beside dnsperf, it may be what limits a
# target's QPS.
measure() {
	local rep=$1 sc=$2 tr=$3 peer=$4 pid=$5 file=$6 limit=$7 rss_idle=$8 acc0=$9
	local dir="$OUT/r$rep/$sc-$tr-$peer" addr=${PEER_ADDR[$peer]}
	mkdir -p "$dir"
	local qflag=()
	if ((limit > 0)); then
		qflag=(-Q "$limit")
	fi

	# Latency rows (SAMPLE=0) are not sampled while they run: each `ss`
	# takes the load core from dnsperf and the responder for a moment,
	# which showed in every target's p99 alike (bench/README, "Fixed-rate
	# latency, session 11"). They get one sample, at the end.
	local sampler=""
	if ((${SAMPLE:-1})); then
		sample "$pid" "$dir/samples.txt" &
		sampler=$!
	fi
	local cpu0 cpu1 t0 t1 rusage resp0=0 resp1=0
	if [[ -n ${RESPONDER:-} ]]; then
		resp0=$(cpu_ticks "$RESPONDER")
	fi
	cpu0=$(cpu_ticks "$pid")
	t0=$(date +%s.%N)
	# dnsperf's own CPU (user+system), from bash's time, shows whether
	# the load generator was the bottleneck.
	rusage=$( { TIMEFORMAT='%U %S'; time dnsperf -v -m "$tr" -s "$addr" -p "$DNS_PORT" -d "$file" \
		-l "$DURATION_RUN" -c "$CLIENTS" -T 2 -q "$OUTSTANDING" -t 3 "${qflag[@]}" \
		>"$dir/dnsperf.txt" 2>&1; } 2>&1 )
	t1=$(date +%s.%N)
	cpu1=$(cpu_ticks "$pid")
	if [[ -n ${RESPONDER:-} ]]; then
		resp1=$(cpu_ticks "$RESPONDER")
	fi
	local rss_end rss_max
	rss_end=$(rss_kb "$pid")
	rss_max=$(rss_kb "$pid" VmHWM)
	if [[ -n $sampler ]]; then
		kill "$sampler" 2>/dev/null
		wait "$sampler" 2>/dev/null || true
	else
		sample_once "$pid" "$dir/samples.txt"
	fi

	{
		echo "cpu_ticks=$((cpu1 - cpu0))"
		echo "responder_cpu_ticks=$((resp1 - resp0))"
		echo "clk_tck=$(getconf CLK_TCK)"
		echo "qps_limit=$limit"
		echo "rss_idle_kb=$rss_idle"
		echo "rss_end_kb=$rss_end"
		echo "rss_max_kb=$rss_max"
		awk '{print "dnsperf_cpu_s=" $1 + $2}' <<<"$rusage"
		echo "dnsperf_real_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')"
		if [[ $peer != ceiling ]]; then
			echo "conns_max=$(awk 'BEGIN{m=0} $1>m{m=$1} END{print m}' "$dir/samples.txt")"
			[[ -z $acc0 ]] || echo "conns_opened=$(($(upstream_accepts) - acc0))"
		fi
	} >"$dir/metrics.env"
	# shellcheck disable=SC2034 # read by bench/run
	LAST_QPS=$(awk '/Queries per second:/ {printf "%d\n", $4}' "$dir/dnsperf.txt")
}
