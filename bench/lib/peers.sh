# shellcheck shell=bash
# The targets bench/run measures: the configurations of dotproxy,
# Unbound and dnsdist forwarding to the same two DoT upstreams, and the
# functions that start them. Each start_* leaves the PID in $BG_PID.
#
# dotproxy's headline configuration ("default") is the shipped config.yaml
# with three things replaced: the listen address, the upstreams (the two
# local responders, with the run's CA) and the admin address. Everything
# else (cache, health checks, policy, log level) is what users run.
#
# Connections to each upstream: dotproxy keeps connections.max_per_upstream
# (default 2). Unbound keeps one pipelined connection per upstream per
# thread (num-threads: its default 1 when pinned, 2 otherwise). dnsdist
# 1.7 opens one connection per query in flight unless maxInFlight is set,
# and keeps connections per TCP worker thread (default 10 workers):
# maxInFlight and setMaxTCPClientThreads(2) bring it to at most 2
# pipelined connections per upstream.
#
# The same two responders also serve DNS over HTTPS (HTTP/2 on TCP port
# DOH_PORT, HTTP/3 on that UDP port) and DNS over QUIC (UDP, the DoT port
# number): dotproxy-doh, dotproxy-h3 and dotproxy-doq are dotproxy's
# default configuration with those upstreams instead, and dnsdist-doh is
# dnsdist's with DoH backends (dnsdist 1.7 has neither HTTP/3 nor DoQ),
# for issue 13's cache-miss rows.
#
# dotproxy-dot-dnsdist and dotproxy-doh-dnsdist are dotproxy's default
# configuration over DoT and over DoH to a second responder, dnsdist
# answering every name itself (SpoofAction) on its own DoT and DoH
# frontends (C++: OpenSSL, and h2o for DoH): against it the DoH row is not held
# to a third of the DoT row's rate by Go's net/http server, so the two
# rows compare what each transport costs dotproxy at saturation.

UP1=127.0.80.1 UP2=127.0.80.2 UP_PORT=8853
DOH_PORT=8443 DOH_PATH=/dns-query
UP_SLOW=127.0.80.3 # the exploration scenario's third upstream, answering late
# dnsdist as a responder: DoT on UP_PORT and DoH on DOH_PORT of both
# addresses, plain DNS on DNS_PORT of the first (to see it is up).
UP_DNSDIST1=127.0.80.4 UP_DNSDIST2=127.0.80.5
CEILING=127.0.80.10 STATS_PORT=5399
# dotproxy-nocache is dotproxy with its cache off, on the same address;
# so are dotproxy-doh, dotproxy-h3 and dotproxy-doq, and dnsdist-doh on
# dnsdist's.
declare -A PEER_ADDR=([ceiling]=127.0.80.10 [dotproxy]=127.0.80.20 [dotproxy-nocache]=127.0.80.20
	[unbound]=127.0.80.21 [dnsdist]=127.0.80.22
	[dotproxy-doh]=127.0.80.20 [dotproxy-h3]=127.0.80.20 [dotproxy-doq]=127.0.80.20 [dnsdist-doh]=127.0.80.22
	[dotproxy-dot-dnsdist]=127.0.80.20 [dotproxy-doh-dnsdist]=127.0.80.20)
DNS_PORT=5300
ADMIN_PORT=8053
TLS_NAME=dns.bench
# SERVER_CPU is the command prefix that starts a server under test
# (taskset -c 1 in bench/run's pinned mode); UNBOUND_THREADS its
# num-threads (1, its default, when pinned to one core).
SERVER_CPU=()
UNBOUND_THREADS=2
# The shipped configuration, config.yaml at the repository's root.
SHIPPED_CONFIG=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/config.yaml

# default_config SHIPPED CA UPSTREAM...: the shipped configuration with
# the listen address, the upstreams (NAME=ADDRESS, verified with CA) and
# the admin address replaced, and nothing else.
default_config() {
	local shipped=$1 ca=$2 ups="upstreams:" u
	shift 2
	for u in "$@"; do
		ups+=$'\n'"  - {name: ${u%%=*}, address: \"${u#*=}\", tls_name: $TLS_NAME, ca_file: \"$ca\"}"
	done
	UPS=$ups awk -v listen="listen: [\"${PEER_ADDR[dotproxy]}:$DNS_PORT\"]" \
		-v admin="admin: \"${PEER_ADDR[dotproxy]}:$ADMIN_PORT\"" '
		/^listen:/ {print listen; next}
		/^upstreams:/ {print ENVIRON["UPS"]; skip = 1; next}
		skip && /^[ \t]/ {next}
		{skip = 0}
		/^admin:/ {print admin; next}
		{print}' "$shipped"
}

# cacheoff_config FILE: a dotproxy configuration FILE with only its cache
# turned off, on standard output.
cacheoff_config() {
	awk '/^cache:/ {c = 1} c && /^  enabled:/ {print "  enabled: false"; c = 0; next} {print}' "$1"
}

# write_configs DIR PKI: the configuration files, one per peer and mode
# (miss: no cache where it can be turned off; hit: each one's cache).
write_configs() {
	local dir=$1 pki=$2 mode
	for mode in miss hit; do
		local cache="cache: {enabled: false}"
		[[ $mode == hit ]] && cache="cache: {enabled: true, size: 10000}"
		cat >"$dir/dotproxy-$mode.yaml" <<-YAML
			listen: ["${PEER_ADDR[dotproxy]}:$DNS_PORT"]
			upstreams:
			  - {name: up1, address: "$UP1:$UP_PORT", tls_name: $TLS_NAME, ca_file: "$pki/ca.pem"}
			  - {name: up2, address: "$UP2:$UP_PORT", tls_name: $TLS_NAME, ca_file: "$pki/ca.pem"}
			connections: {max_per_upstream: 2}
			$cache
			admin: ""
			log: {level: warn}
		YAML
	done
	default_config "$SHIPPED_CONFIG" "$pki/ca.pem" "up1=$UP1:$UP_PORT" "up2=$UP2:$UP_PORT" >"$dir/dotproxy-default.yaml"
	diff "$SHIPPED_CONFIG" "$dir/dotproxy-default.yaml" >"$dir/dotproxy-default.diff" || true
	# The same over DoH (HTTP/2, HTTP/3) and over DoQ.
	default_config "$SHIPPED_CONFIG" "$pki/ca.pem" "up1=https://$UP1:$DOH_PORT$DOH_PATH" \
		"up2=https://$UP2:$DOH_PORT$DOH_PATH" >"$dir/dotproxy-doh-default.yaml"
	default_config "$SHIPPED_CONFIG" "$pki/ca.pem" "up1=h3://$UP1:$DOH_PORT$DOH_PATH" \
		"up2=h3://$UP2:$DOH_PORT$DOH_PATH" >"$dir/dotproxy-h3-default.yaml"
	default_config "$SHIPPED_CONFIG" "$pki/ca.pem" "up1=quic://$UP1:$UP_PORT" "up2=quic://$UP2:$UP_PORT" \
		>"$dir/dotproxy-doq-default.yaml"
	# Over DoT and over DoH to dnsdist answering every name itself.
	default_config "$SHIPPED_CONFIG" "$pki/ca.pem" "up1=$UP_DNSDIST1:$UP_PORT" "up2=$UP_DNSDIST2:$UP_PORT" \
		>"$dir/dotproxy-dot-dnsdist-default.yaml"
	default_config "$SHIPPED_CONFIG" "$pki/ca.pem" "up1=https://$UP_DNSDIST1:$DOH_PORT$DOH_PATH" \
		"up2=https://$UP_DNSDIST2:$DOH_PORT$DOH_PATH" >"$dir/dotproxy-doh-dnsdist-default.yaml"
	{
		echo "setLocal('$UP_DNSDIST1:$DNS_PORT')"
		echo "setACL({'127.0.0.0/8'})"
		echo "setSecurityPollSuffix('')"
		for a in "$UP_DNSDIST1" "$UP_DNSDIST2"; do
			echo "addTLSLocal('$a:$UP_PORT', '$pki/server.pem', '$pki/server.key')"
			echo "addDOHLocal('$a:$DOH_PORT', '$pki/server.pem', '$pki/server.key', '$DOH_PATH')"
		done
		echo "addAction(AllRule(), SpoofAction('192.0.2.1'))"
	} >"$dir/dnsdist-responder.conf"
	# Exploration: the same with a third upstream that answers late.
	default_config "$SHIPPED_CONFIG" "$pki/ca.pem" "up1=$UP1:$UP_PORT" "up2=$UP2:$UP_PORT" \
		"slow=$UP_SLOW:$UP_PORT" >"$dir/dotproxy-explore.yaml"
	# Memory per cached entry: room for every name the step sends.
	sed -e 's/cache: {.*}/cache: {enabled: true, size: 1000000, max_memory: 1GiB, prefetch: false}/' \
		"$dir/dotproxy-hit.yaml" >"$dir/dotproxy-fill.yaml"

	# Unbound: one configuration for both modes. Every cache-miss run uses
	# names not asked before of a freshly started Unbound, so its cache
	# (default sizes) never answers them; the hit runs use the same cache.
	# The validator is left out: the other two do not validate either.
	mkdir -p "$dir/unbound"
	cat >"$dir/unbound.conf" <<-CONF
		server:
		  interface: ${PEER_ADDR[unbound]}@$DNS_PORT
		  num-threads: $UNBOUND_THREADS
		  so-reuseport: yes
		  do-daemonize: no
		  username: ""
		  chroot: ""
		  directory: "$dir/unbound"
		  pidfile: ""
		  use-syslog: no
		  logfile: ""
		  verbosity: 1
		  access-control: 127.0.0.0/8 allow
		  do-not-query-localhost: no
		  module-config: "iterator"
		  incoming-num-tcp: 256
		  tls-cert-bundle: "$pki/ca.pem"
		forward-zone:
		  name: "."
		  forward-tls-upstream: yes
		  forward-addr: $UP1@$UP_PORT#$TLS_NAME
		  forward-addr: $UP2@$UP_PORT#$TLS_NAME
		remote-control:
		  control-enable: no
	CONF

	for mode in miss hit; do
		local server="tls='openssl', subjectName='$TLS_NAME', caStore='$pki/ca.pem', validateCertificates=true, maxInFlight=1000"
		{
			echo "setLocal('${PEER_ADDR[dnsdist]}:$DNS_PORT')"
			echo "setACL({'127.0.0.0/8'})"
			echo "setSecurityPollSuffix('')"
			echo "setMaxTCPClientThreads(2)"
			echo "newServer({address='$UP1:$UP_PORT', $server})"
			echo "newServer({address='$UP2:$UP_PORT', $server})"
			if [[ $mode == hit ]]; then
				echo "pc = newPacketCache(10000, {})"
				echo "getPool(''):setCache(pc)"
			fi
		} >"$dir/dnsdist-$mode.conf"
	done
	# dnsdist as users run it: with a packet cache.
	cp "$dir/dnsdist-hit.conf" "$dir/dnsdist-default.conf"
	# The same with DoH backends: HTTP/2 multiplexes by itself, so no
	# maxInFlight, which is for TCP and DoT backends.
	local doh="tls='openssl', subjectName='$TLS_NAME', caStore='$pki/ca.pem', validateCertificates=true, dohPath='$DOH_PATH'"
	sed -e "s|^newServer({address='$UP1:$UP_PORT', .*|newServer({address='$UP1:$DOH_PORT', $doh})|" \
		-e "s|^newServer({address='$UP2:$UP_PORT', .*|newServer({address='$UP2:$DOH_PORT', $doh})|" \
		"$dir/dnsdist-default.conf" >"$dir/dnsdist-doh-default.conf"
}

# start_peer PEER MODE LOGDIR: start one peer with its MODE configuration
# (default, miss, hit; explore for dotproxy; default only for the DoH,
# HTTP/3 and DoQ peers) and wait until it answers. dotproxy-nocache is
# dotproxy on its miss configuration, cache off.
start_peer() {
	local peer=$1 mode=$2 logs=$3
	case $peer in
	dotproxy) start_bg "$logs/dotproxy.log" "${SERVER_CPU[@]}" "$BIN/dotproxy" -config "$CONF/dotproxy-$mode.yaml" ;;
	dotproxy-nocache) start_bg "$logs/$peer.log" "${SERVER_CPU[@]}" "$BIN/dotproxy" -config "$CONF/dotproxy-miss.yaml" ;;
	dotproxy-doh | dotproxy-h3 | dotproxy-doq | dotproxy-dot-dnsdist | dotproxy-doh-dnsdist) start_bg "$logs/$peer.log" "${SERVER_CPU[@]}" "$BIN/dotproxy" -config "$CONF/$peer-$mode.yaml" ;;
	dnsdist-doh) start_bg "$logs/$peer.log" "${SERVER_CPU[@]}" dnsdist --supervised --disable-syslog -C "$CONF/$peer-$mode.conf" ;;
	unbound) start_bg "$logs/unbound.log" "${SERVER_CPU[@]}" "$UNBOUND" -d -c "$CONF/unbound.conf" ;;
	dnsdist) start_bg "$logs/dnsdist.log" "${SERVER_CPU[@]}" dnsdist --supervised --disable-syslog -C "$CONF/dnsdist-$mode.conf" ;;
	*) echo "unknown peer $peer" >&2 && return 1 ;;
	esac
	wait_ready "${PEER_ADDR[$peer]}" "$BG_PID" || {
		echo "$peer did not answer; its log:" >&2
		tail -n 20 "$logs/$peer.log" >&2
		stop_pid "$BG_PID" # its address is the next peer's
		return 1
	}
}

# wait_ready ADDR PID: up to 20 s for a query to ADDR to be answered.
wait_ready() {
	local addr=$1 pid=$2 i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 1
		if [[ $(dig +short +time=1 +tries=1 -p "$DNS_PORT" "@$addr" ready.bench.example A 2>/dev/null) == 192.0.2.1 ]]; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# responder_stats: the responder's counters, one line per listener:
# TRANSPORT ADDRESS accepts=N open=N queries=N.
responder_stats() {
	local line
	exec 3<>"/dev/tcp/$CEILING/$STATS_PORT"
	while read -r line <&3; do
		echo "$line"
	done
	exec 3<&-
}

# upstream_accepts: connections the responder has accepted so far, on
# both upstream addresses together, over DoT, DoH (HTTP/2 and HTTP/3)
# and DoQ.
upstream_accepts() {
	responder_stats | awk '$1 ~ /^(dot|doh|h3|doq)$/ {sub("accepts=", "", $3); n += $3} END {print n + 0}'
}

# upstream_conns: the most connections established to one upstream now:
# TCP ones (DoT, DoH) as ss sees them; QUIC ones (HTTP/3, DoQ), which ss
# cannot tell apart, as the responder counts them.
upstream_conns() {
	local tcp quic
	tcp=$(ss -Htn state established "( dport = :$UP_PORT or dport = :$DOH_PORT )" |
		awk -v ups="$UP1:$UP_PORT $UP2:$UP_PORT $UP1:$DOH_PORT $UP2:$DOH_PORT $UP_DNSDIST1:$UP_PORT $UP_DNSDIST2:$UP_PORT $UP_DNSDIST1:$DOH_PORT $UP_DNSDIST2:$DOH_PORT" '
			BEGIN {split(ups, u, " "); for (i in u) want[u[i]] = 1}
			$4 in want {n[$4]++}
			END {m = 0; for (k in n) if (n[k] > m) m = n[k]; print m}')
	quic=$(responder_stats | awk '$1 == "doq" || $1 == "h3" {sub("open=", "", $4); if ($4 + 0 > m) m = $4 + 0} END {print m + 0}')
	echo $((tcp > quic ? tcp : quic))
}
