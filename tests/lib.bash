# SPDX-License-Identifier: Apache-2.0
# Helpers for the bats suites that drive the stand-in apps (tests/apps): paths, a background
# server and its port, a client run, peers that are not ours (openssl, gnutls), and the kernel's
# kTLS counters. In a .bats file under tests/: `load lib`, and `teardown() { lib_teardown; }`.
#
# Environment:
#   APPS        the apps' directory (default build/apps; build/asan/apps for the sanitizer build;
#               build/apps228 for the apps built on Mbed TLS 2.28, which speak TLS 1.2 only)
#   SHIM        the shim library (default build/libktlsshim.so)
#   SHIM_MODES  the modes each_mode runs a case in: "plain shim" (default), "plain" or "shim"
#   SHIM_ENV    extra VAR=value words for the apps in shim mode (e.g. KTLS_SHIM_LOG=info)
#   APP_TIMEOUT seconds one app run may take (default 60)
# Relative paths are taken from the repository root.

# shellcheck disable=SC2034,SC2154 # CERTS etc. are for the suites; status and output come from run
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APPS=${APPS:-build/apps}
SHIM=${SHIM:-build/libktlsshim.so}
[[ $APPS = /* ]] || APPS=$ROOT/$APPS
[[ $SHIM = /* ]] || SHIM=$ROOT/$SHIM
CERTS=$ROOT/build/certs
# The TLS versions the apps speak, newest first: apps built on Mbed TLS 2.28 refuse --tls 1.3.
if "$APPS/mbed-client" --tls 1.3 --help >/dev/null 2>&1; then TLS_VERSIONS="1.3 1.2"; else TLS_VERSIONS=1.2; fi
TLS_NEWEST=${TLS_VERSIONS%% *}
SHIM_MODES=${SHIM_MODES:-plain shim}
# The shim's kernel self-test installs keys on a loopback pair of its own, once per process: the
# kernel's TlsTxSw/TlsRxSw count those too. The suites that count a connection's contexts exactly
# run without it; tests/offload.bats turns it on (KTLS_SHIM_SELFTEST=1) and counts them.
export KTLS_SHIM_SELFTEST=${KTLS_SHIM_SELFTEST:-0}
APP_TIMEOUT=${APP_TIMEOUT:-60}
APP_PRELOAD=           # set by each_mode: what the apps get as LD_PRELOAD ('' = nothing)
_BG_PIDS=()            # servers and peers to end in lib_teardown
CLIENT_STATUS=0
_NSERVERS=0

# each_mode CMD...: runs CMD once per mode of $SHIM_MODES, the apps plain or with the shim
# preloaded. A failure stops at once; the mode is printed first, so a failed test shows it.
each_mode() {
	local mode
	for mode in $SHIM_MODES; do
		case $mode in
		plain) APP_PRELOAD= ;;
		shim) APP_PRELOAD=$(shim_preload) || return 1 ;;
		*) echo "# unknown mode '$mode' in SHIM_MODES"; return 1 ;;
		esac
		echo "# mode: $mode"
		"$@"
	done
	APP_PRELOAD=
}

# shim_preload: the LD_PRELOAD value that loads $SHIM (a sanitizer build of the shim needs its
# ASan or TSan runtime first in the list). Kept for the rest of the test file: ldd costs a fifth of
# a second inside User-Mode Linux, and most cases call this once or twice per connection.
shim_preload() {
	if [ ! -f "$SHIM" ]; then
		echo "# no shim at $SHIM (make build/libktlsshim.so, or SHIM_MODES=plain)" >&2
		return 1
	fi
	local cache=${BATS_FILE_TMPDIR:-/nonexistent}/shim-preload line
	if [ -f "$cache" ] && IFS= read -r line <"$cache" && [[ $line == *"$SHIM" ]]; then
		echo "$line"
		return
	fi
	line="$(ldd "$SHIM" | awk '$1 ~ /^lib(asan|tsan)\.so/ { printf "%s:", $3 }')$SHIM"
	[ -z "${BATS_FILE_TMPDIR:-}" ] || echo "$line" >"$cache"
	echo "$line"
}

# no_sanitizer_report FILE...: none of the logs holds an ASan, LSan, TSan or UBSan report.
no_sanitizer_report() {
	if grep -lE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:|SUMMARY: (Address|Undefined|Thread)' \
		"$@" 2>/dev/null; then
		echo "# sanitizer report above"
		return 1
	fi
}

# app CMD...: CMD with the current mode's preload (only CMD gets it), ended after $APP_TIMEOUT
# seconds (status 124).
app() {
	# shellcheck disable=SC2086 # SHIM_ENV is a list of words
	timeout "$APP_TIMEOUT" env ${APP_PRELOAD:+LD_PRELOAD="$APP_PRELOAD" ${SHIM_ENV:-}} "$@"
}

# start_server ARGS...: mbed-server in the background with ARGS, logging to $SERVER_LOG under
# $BATS_TEST_TMPDIR; waits for its "PORT n" line. Sets PORT, SERVER_PID and SERVER_LOG.
start_server() {
	SERVER_LOG=$BATS_TEST_TMPDIR/server.$((_NSERVERS++)).log
	: >"$SERVER_LOG" # exists before the first poll, whatever the scheduler does
	app "$APPS/mbed-server" --port 0 "$@" >"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	_BG_PIDS+=("$SERVER_PID")
	PORT=
	local i line
	for ((i = 0; i < 400; i++)); do
		# Builtins only: a process costs a tenth of a second inside User-Mode Linux.
		while IFS= read -r line; do
			[[ $line =~ ^PORT\ ([0-9]+)$ ]] && PORT=${BASH_REMATCH[1]}
		done <"$SERVER_LOG"
		[ -n "$PORT" ] && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.025
	done
	echo "# mbed-server $* did not announce a port:"
	sed 's/^/#   /' "$SERVER_LOG"
	return 1
}

# stop_server: waits for the server, which must end by itself (--serve N), or within 5 s of a
# failed run_client (it may wait for connections that will not come), or by app's timeout.
# Sets SERVER_STATUS, shows the log when it is not 0, and returns it.
stop_server() {
	local i
	for ((i = 0; CLIENT_STATUS != 0 && i < 100; i++)); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ "$CLIENT_STATUS" -eq 0 ] || kill "$SERVER_PID" 2>/dev/null || true
	SERVER_STATUS=0
	wait "$SERVER_PID" || SERVER_STATUS=$?
	if [ "$SERVER_STATUS" -ne 0 ]; then
		echo "# server exit $SERVER_STATUS ($SERVER_LOG):"
		sed 's/^/#   /' "$SERVER_LOG"
	fi
	return "$SERVER_STATUS"
}

# run_client ARGS...: mbed-client --port $PORT ARGS through bats' run: sets status (also as
# CLIENT_STATUS) and output (stdout and stderr, also kept in $CLIENT_LOG).
run_client() {
	CLIENT_LOG=$BATS_TEST_TMPDIR/client.$_NSERVERS.log
	run app "$APPS/mbed-client" --port "$PORT" "$@"
	CLIENT_STATUS=$status
	printf '%s\n' "$output" >"$CLIENT_LOG"
}

# start_peer NAME CMD...: a server that is not ours (openssl s_server, gnutls-serv) listening on
# port 0, in the background with stdout in $BATS_TEST_TMPDIR/NAME.out and stderr in NAME.err.
# Its standard input stays open and empty (s_server would act on end of input). Sets PEER_PID
# and PEER_PORT, found from its listening socket.
start_peer() {
	local name=$1 fifo=$BATS_TEST_TMPDIR/$1.stdin
	shift
	rm -f "$fifo" && mkfifo "$fifo"
	"$@" <>"$fifo" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" &
	PEER_PID=$!
	_BG_PIDS+=("$PEER_PID")
	PEER_PORT=
	local i
	for ((i = 0; i < 400; i++)); do
		PEER_PORT=$(ss -Htlnp 2>/dev/null | awk -v p="pid=$PEER_PID," \
			'index($0, p) && $4 !~ /^\[/ { n = split($4, a, ":"); print a[n]; exit }')
		[ -n "$PEER_PORT" ] && return 0
		kill -0 "$PEER_PID" 2>/dev/null || break
		sleep 0.025
	done
	echo "# $name ($*) is not listening:"
	sed 's/^/#   /' "$BATS_TEST_TMPDIR/$name.err"
	return 1
}

# wait_peer: waits up to $APP_TIMEOUT seconds for the peer to end by itself; its exit status, or
# 124 after killing it.
wait_peer() {
	local i
	for ((i = 0; i < APP_TIMEOUT * 20; i++)); do
		kill -0 "$PEER_PID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$PEER_PID" 2>/dev/null; then
		kill "$PEER_PID"
		wait "$PEER_PID" || true
		return 124
	fi
	wait "$PEER_PID"
}

# tls_stat NAME: a counter of /proc/net/tls_stat (TlsTxSw, TlsRxSw, TlsDecryptError, ...), 0 when
# the kernel has no kTLS loaded.
tls_stat() {
	awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' /proc/net/tls_stat \
		2>/dev/null || echo 0
}

# lib_teardown: ends the servers and peers a failed test left running (TERM: timeout passes it on).
lib_teardown() {
	local pid
	for pid in "${_BG_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	_BG_PIDS=()
}

# --- peers that are not ours: files piped through, compared byte for byte ----------------------

# interop_openssl_server: our client sends a file to s_server, which prints it; then fetches a file from
# s_server -WWW, which answers with an HTTP header and the file.
interop_openssl_server() {
	local dir=$BATS_TEST_TMPDIR tls
	head -c 1000000 /dev/urandom >"$dir/data"
	for tls in $TLS_VERSIONS; do
		start_peer s_server openssl s_server -quiet -naccept 1 -accept 127.0.0.1:0 \
			-cert "$CERTS/server-rsa.crt" -key "$CERTS/server-rsa.key"
		PORT=$PEER_PORT run_client --tls "$tls" --send-file "$dir/data"
		[ "$status" -eq 0 ]
		wait_peer
		cmp "$dir/data" "$dir/s_server.out"

		# -WWW serves files from its working directory.
		mkdir -p "$dir/www" && cp "$dir/data" "$dir/www/data"
		printf 'GET /data HTTP/1.0\r\n\r\n' >"$dir/request"
		cd "$dir/www" || return
		start_peer s_server openssl s_server -WWW -quiet -naccept 1 -accept 127.0.0.1:0 \
			-cert "$CERTS/server-rsa.crt" -key "$CERTS/server-rsa.key"
		cd - >/dev/null || return
		PORT=$PEER_PORT run_client --tls "$tls" --send-file "$dir/request" --recv-file "$dir/got"
		[ "$status" -eq 0 ]
		wait_peer
		head -n 1 "$dir/got" | grep -q '^HTTP/1.0 200 ok'
		cmp "$dir/data" <(tail -c 1000000 "$dir/got")
		[ "$(stat -c %s "$dir/got")" -lt 1000100 ]
	done
}


# interop_openssl_client: s_client sends a file to our server, then receives one from it.
interop_openssl_client() {
	local dir=$BATS_TEST_TMPDIR tls
	head -c 1000000 /dev/urandom >"$dir/data"
	for tls in $TLS_VERSIONS; do
		start_server --serve 1 --tls "$tls" --recv-file "$dir/got"
		timeout "$APP_TIMEOUT" openssl s_client -quiet -no_ign_eof -nocommands \
			-connect "127.0.0.1:$PORT" -CAfile "$CERTS/ca.crt" -verify_return_error \
			<"$dir/data" >/dev/null 2>"$dir/s_client.err"
		stop_server
		cmp "$dir/data" "$dir/got"

		start_server --serve 1 --tls "$tls" --send-file "$dir/data"
		timeout "$APP_TIMEOUT" openssl s_client -quiet -connect "127.0.0.1:$PORT" \
			-CAfile "$CERTS/ca.crt" -verify_return_error </dev/null >"$dir/got" \
			2>"$dir/s_client.err"
		stop_server
		cmp "$dir/data" "$dir/got"
	done
}


# interop_gnutls: gnutls-cli sends to and receives from our server; our client checks gnutls-serv's echo
# of a text file (its echo mode answers line by line, so each 1000-byte chunk ends a line).
interop_gnutls() {
	local dir=$BATS_TEST_TMPDIR
	head -c 1000000 /dev/urandom >"$dir/data"
	start_server --serve 1 --recv-file "$dir/got"
	timeout "$APP_TIMEOUT" gnutls-cli --logfile="$dir/gnutls-cli.log" \
		--x509cafile="$CERTS/ca.crt" -p "$PORT" localhost <"$dir/data" >/dev/null
	stop_server
	cmp "$dir/data" "$dir/got"

	# GNUTLS_DOWNLOAD=no skips this direction: inside User-Mode Linux gnutls-cli stalls on
	# downloads even without the shim (its own behaviour there, not ours).
	if [ "${GNUTLS_DOWNLOAD:-yes}" = yes ]; then
		start_server --serve 1 --tls 1.2 --send-file "$dir/data"
		timeout "$APP_TIMEOUT" gnutls-cli --logfile="$dir/gnutls-cli.log" \
			--x509cafile="$CERTS/ca.crt" -p "$PORT" localhost </dev/null >"$dir/got"
		stop_server
		cmp "$dir/data" "$dir/got"
	fi

	head -c 300000 /dev/urandom | base64 -w 99 >"$dir/text"
	local size
	size=$(stat -c %s "$dir/text")
	local tls
	for tls in $TLS_VERSIONS; do
		start_peer gnutls-serv gnutls-serv --echo --crlf -p 0 \
			--x509certfile="$CERTS/server-rsa.crt" --x509keyfile="$CERTS/server-rsa.key"
		PORT=$PEER_PORT run_client --tls "$tls" --echo --send-file "$dir/text" --chunk 1000
		[ "$status" -eq 0 ]
		grep -q "^CONN 0 version=TLSv$tls .* up=$size down=$size " <<<"$output"
		kill "$PEER_PID"
	done
}
