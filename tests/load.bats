#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# Load: many threads of connections with mixed TLS versions and suites through ONE server process
# (mbed-server --threads --echo: a thread and a context per connection), both ends shimmed. The
# client (tests/load/load-client.c) checks every echoed byte; the server must log every
# connection and no error; the kernel's part is asserted exactly (8 of the 10 suites in the mix
# can be offloaded: KTLS_SHIM_STATS's counts and /proc/net/tls_stat's deltas); the resident memory
# of both processes must not grow after warm-up. Another suite runs the smaller load under
# valgrind memcheck, which must find no error and no leak.
#
# Environment (besides lib.bash's):
#   KTLS_TEST_LOAD   quick (default: 16 threads x 50 connections) or full (64 x 1000)
#   LOAD_THREADS, LOAD_CONNECTIONS  override the scale (connections: a multiple of 10)
#   LOAD_REPORT      append the figures (one line per run) to this file
#   LOAD_CLIENT      the client program (default: the one next to $APPS: build/<variant>/tests/)
# Sanitizer builds: SHIM=build/tsan/libktlsshim.so APPS=build/tsan/apps (or asan): the runtime is
# preloaded first, and any report fails the test.

load lib

setup_file() {
	export KTLS_EXPECT=${KTLS_EXPECT:-user}
	export LOAD_CLIENT=${LOAD_CLIENT:-${APPS%/apps}/tests/load-client}
	[ -x "$LOAD_CLIENT" ] || { echo "# no $LOAD_CLIENT (make)" >&3; return 1; }
	if [ "${KTLS_TEST_LOAD:-quick}" = full ]; then
		export THREADS=${LOAD_THREADS:-64} CONNS=${LOAD_CONNECTIONS:-1000}
	else
		export THREADS=${LOAD_THREADS:-16} CONNS=${LOAD_CONNECTIONS:-50}
	fi
	# Generous: the full load takes minutes, inside User-Mode Linux tens of them.
	export APP_TIMEOUT=${LOAD_TIMEOUT:-7200}
	if [ "$KTLS_EXPECT" = kernel ]; then
		"$ROOT/build/tools/ktls-probe" >/dev/null
	else
		! "$ROOT/build/tools/ktls-probe" >/dev/null
	fi
}

teardown() { lib_teardown; }

# sanitized NAME...: the shim is built with one of these sanitizers (asan, tsan, ubsan).
sanitized() {
	local re
	re=$(IFS='|'; echo "$*")
	ldd "$SHIM" | grep -qE "^[[:space:]]*lib($re)\.so"
}

# server_process PID: the mbed-server process under PID (start_server's background job runs
# timeout, which runs the server).
server_process() {
	local p=$1 i
	for ((i = 0; i < 4; i++)); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = mbed-server ] && { echo "$p"; return 0; }
		p=$(pgrep -P "$p" | head -n 1) || break
	done
	echo "# no mbed-server process under $1" >&2
	return 1
}

# stats_line LOG: the shim's "stats: ..." line from a log file.
stats_line() { grep -m1 -o 'stats: .*' "$1" || echo "(no stats line in $1)"; }

@test "threads x connections, mixed versions and suites, one server: byte-exact, memory flat" {
	local d=$BATS_TEST_TMPDIR total=$((THREADS * CONNS)) preload start=$SECONDS
	[ $((CONNS % 10)) -eq 0 ]
	preload=$(shim_preload)
	local tx0 rx0
	tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw)
	# One more connection than the load: a plain mbed-client at the end shows the server still
	# serves, and keeps it alive while the client reads its memory.
	APP_PRELOAD=$preload SHIM_ENV="KTLS_SHIM_STATS=1 KTLS_SHIM_LOG_FILE=$d/server.shim" \
		start_server --threads --echo --serve $((total + 1))
	local st=0 server
	server=$(server_process "$SERVER_PID")
	LD_PRELOAD=$preload KTLS_SHIM_STATS=1 KTLS_SHIM_LOG_FILE=$d/client.shim \
		timeout "$APP_TIMEOUT" "$LOAD_CLIENT" --port "$PORT" --threads "$THREADS" \
		--connections "$CONNS" --cert "$CERTS" --server-pid "$server" >"$d/client.log" 2>&1 || st=$?
	APP_PRELOAD=$preload SHIM_ENV="KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$d/last.shim" \
		run_client --echo --up 20K
	stop_server || true
	local secs=$((SECONDS - start))
	d_tx=$(($(tls_stat TlsTxSw) - tx0)) d_rx=$(($(tls_stat TlsRxSw) - rx0))
	sed -n 's/^/# /p' "$d/client.log" | grep -E '^# (LOAD|RSS|ERROR)' | head -20
	echo "# $secs s; server: $(stats_line "$d/server.shim")"
	echo "#   client: $(stats_line "$d/client.shim")"
	no_sanitizer_report "$d/client.log" "$SERVER_LOG"
	[ "$st" -eq 0 ]
	[ "$CLIENT_STATUS" -eq 0 ]
	[ "$SERVER_STATUS" -eq 0 ]
	grep -q "^LOAD threads=$THREADS connections=$total ok=$total failed=0$" "$d/client.log"
	[ "$(grep -c '^CONN ' "$SERVER_LOG")" -eq $((total + 1)) ]
	! grep -q '^ERROR' "$SERVER_LOG"
	# Every entry of the mix had its share.
	[ "$(grep -c "^MIX .* $((total / 10))$" "$d/client.log")" -eq 10 ]

	# The kernel's part: 8 of the 10 suites, at both ends, plus the last client at both ends.
	local k=$((total / 10 * 8))
	if [ "$KTLS_EXPECT" = kernel ]; then
		grep -q "stats: connections=$total tx_kernel=$k rx_kernel=$k fallbacks: suite not supported by kTLS=$((total - k))$" "$d/client.shim"
		grep -q "stats: connections=$((total + 1)) tx_kernel=$((k + 1)) rx_kernel=$((k + 1)) fallbacks: suite not supported by kTLS=$((total - k))$" "$d/server.shim"
		grep -q 'tx=kernel rx=kernel' "$d/last.shim"
		[ "$d_tx" -eq $((2 * k + 2)) ]
		[ "$d_rx" -eq $((2 * k + 2)) ]
	else
		grep -q "stats: connections=$total tx_kernel=0 rx_kernel=0 " "$d/client.shim"
		grep -q "stats: connections=$((total + 1)) tx_kernel=0 rx_kernel=0 " "$d/server.shim"
		[ "$d_tx" -eq 0 ]
		[ "$d_rx" -eq 0 ]
	fi

	# Memory flat after warm-up (a tenth of the connections): growth under 4 MiB per process,
	# where keeping one context's state (~1 KiB) per connection would add tens of MiB at full
	# scale. The figures go to LOAD_REPORT. Not asserted under a sanitizer, whose own allocator
	# holds freed memory back (ASan's quarantine); LeakSanitizer checks leaks there instead.
	local who warm end
	for who in client server; do
		[[ $(grep "^RSS $who " "$d/client.log") =~ warm=([0-9]+)\ end=([0-9]+) ]]
		warm=${BASH_REMATCH[1]} end=${BASH_REMATCH[2]}
		[ "$warm" -gt 0 ]
		[ "$end" -gt 0 ]
		[ -z "${LOAD_REPORT:-}" ] || printf '%s\t%s\t%s x %s\t%s\twarm %s KiB\tend %s KiB\t%s s\n' \
			"$KTLS_EXPECT" "$(basename "$(dirname "$SHIM")")" "$THREADS" "$CONNS" "$who" "$warm" \
			"$end" "$secs" >>"$LOAD_REPORT"
		if ! sanitized asan tsan && [ $((end - warm)) -ge 4096 ]; then
			echo "# $who RSS grew from $warm to $end KiB after warm-up"
			return 1
		fi
	done
}

# make check leaves this one to make test (bats tag slow): valgrind takes most of a minute.
# bats test_tags=slow
@test "a smaller load under valgrind memcheck: no error, no leak, at either end" {
	! sanitized asan tsan ubsan || skip "valgrind runs with the plain build only"
	command -v valgrind >/dev/null || { echo "# valgrind is not installed (tools/install-deps)"; return 1; }
	local d=$BATS_TEST_TMPDIR threads=4 conns=10 total=40
	local vg="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect"
	vg+=" --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
	# The server under valgrind (start_server cannot wrap it); valgrind keeps LD_PRELOAD for
	# the program, after its own libraries.
	SERVER_LOG=$d/vg-server.log
	: >"$SERVER_LOG"
	LD_PRELOAD=$SHIM KTLS_SHIM_STATS=1 KTLS_SHIM_LOG_FILE=$d/server.shim timeout "$APP_TIMEOUT" \
		$vg --log-file="$d/vg-server.txt" "$APPS/mbed-server" --port 0 --threads --echo \
		--serve "$total" >"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	_BG_PIDS+=("$SERVER_PID")
	PORT=
	local i
	for ((i = 0; i < 600 && ! PORT; i++)); do
		PORT=$(sed -n 's/^PORT //p' "$SERVER_LOG")
		[ -n "$PORT" ] || sleep 0.1
	done
	[ -n "$PORT" ]
	local st=0
	LD_PRELOAD=$SHIM KTLS_SHIM_STATS=1 KTLS_SHIM_LOG_FILE=$d/client.shim timeout "$APP_TIMEOUT" \
		$vg --log-file="$d/vg-client.txt" "$LOAD_CLIENT" --port "$PORT" --threads "$threads" \
		--connections "$conns" --cert "$CERTS" >"$d/client.log" 2>&1 || st=$?
	CLIENT_STATUS=$st
	stop_server || true
	echo "# client $st, server $SERVER_STATUS; $(grep '^LOAD' "$d/client.log")"
	cat "$d/vg-client.txt" "$d/vg-server.txt" | head -60 | sed 's/^/#   /'
	# The shim was there and counted every connection at both ends.
	local k=0
	[ "$KTLS_EXPECT" != kernel ] || k=$((total / 10 * 8))
	grep -q "stats: connections=$total tx_kernel=$k rx_kernel=$k " "$d/client.shim"
	grep -q "stats: connections=$total tx_kernel=$k rx_kernel=$k " "$d/server.shim"
	[ "$st" -eq 0 ]
	[ "$SERVER_STATUS" -eq 0 ]
	grep -q "^LOAD threads=$threads connections=$total ok=$total failed=0$" "$d/client.log"
	# -q: the logs hold only errors and leaks.
	[ ! -s "$d/vg-client.txt" ]
	[ ! -s "$d/vg-server.txt" ]
}
