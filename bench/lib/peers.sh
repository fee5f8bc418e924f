# The targets bench/run measures: the configurations of dotproxy,
# Unbound and dnsdist forwarding to the same two DoT upstreams, and the
# functions that start them. Each start_* leaves the PID in $BG_PID.
#
# Connections to each upstream: dotproxy keeps connections.max_per_upstream
# (default 2). Unbound keeps one pipelined connection per upstream per
# thread (num-threads 2 here, its default is 1). dnsdist 1.7 opens one
# connection per query in flight unless maxInFlight is set, and keeps
# connections per TCP worker thread (default 10 workers): maxInFlight and
# setMaxTCPClientThreads(2) bring it to at most 2 pipelined connections
# per upstream.

UP1=127.0.80.1 UP2=127.0.80.2 UP_PORT=8853
CEILING=127.0.80.10 STATS_PORT=5399
declare -A PEER_ADDR=([ceiling]=127.0.80.10 [dotproxy]=127.0.80.20 [unbound]=127.0.80.21 [dnsdist]=127.0.80.22)
DNS_PORT=5300
TLS_NAME=dns.bench

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
		  num-threads: 2
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
}

# start_peer PEER MODE LOGDIR: start one peer with its MODE configuration
# and wait until it answers.
start_peer() {
	local peer=$1 mode=$2 logs=$3
	case $peer in
	dotproxy) start_bg "$logs/dotproxy.log" "$BIN/dotproxy" -config "$CONF/dotproxy-$mode.yaml" ;;
	unbound) start_bg "$logs/unbound.log" "$UNBOUND" -d -c "$CONF/unbound.conf" ;;
	dnsdist) start_bg "$logs/dnsdist.log" dnsdist --supervised --disable-syslog -C "$CONF/dnsdist-$mode.conf" ;;
	*) echo "unknown peer $peer" >&2 && return 1 ;;
	esac
	wait_ready "${PEER_ADDR[$peer]}" "$BG_PID" || {
		echo "$peer did not answer; its log:" >&2
		tail -n 20 "$logs/$peer.log" >&2
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

# upstream_accepts: connections the responder has accepted so far, on
# both upstream addresses together.
upstream_accepts() {
	local line total=0
	exec 3<>"/dev/tcp/$CEILING/$STATS_PORT"
	while read -r line <&3; do
		if [[ $line == dot* ]]; then
			line=${line#*accepts=}
			total=$((total + ${line%% *}))
		fi
	done
	exec 3<&-
	echo "$total"
}

# upstream_conns: the most established connections to one upstream now.
upstream_conns() {
	local a b
	a=$(ss -Htn state established dst "$UP1:$UP_PORT" | wc -l)
	b=$(ss -Htn state established dst "$UP2:$UP_PORT" | wc -l)
	echo $((a > b ? a : b))
}
