#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# Real programs nobody here wrote, unchanged, with the shim preloaded: Debian 13's lighttpd 1.4.79
# with mod_mbedtls, MicroPython's tls module and nng's nngcat, all on Debian 13's Mbed TLS 3.6, run
# from the private root tests/realapps/setup prepares (their glibc is newer than this system's).
# Their peers are curl, openssl s_client, our mbed-client (shimmed too), MicroPython and nngcat.
#
# The same cases run inside tools/ktls-vm with KTLS_EXPECT=kernel, where every lighttpd connection
# must move TX and RX to the kernel (its log line says tx=kernel rx=kernel and /proc/net/tls_stat
# counts exactly the shimmed connections), and on the host (no kTLS) with KTLS_EXPECT=user, where
# the same transfers must succeed through the fallback. MicroPython and nngcat use their own BIO
# callbacks: the shim cannot prove their socket and must say so and stay out of the way, in both.
#
# The first run downloads the programs (on the host: the VM has no network). A set-up problem
# fails every test with its reason; nothing is skipped. KTLS_TEST_QUICK=1: the 64 MiB transfers
# move the 1 MiB file instead.

setup_file() {
	export ROOT
	ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	export SHIM=${SHIM:-$ROOT/build/libktlsshim.so}
	export APPS=${APPS:-$ROOT/build/apps}
	export KTLS_EXPECT=${KTLS_EXPECT:-user}
	export RA=${REALAPPS_DIR:-$ROOT/build/realapps}
	export RA12=${REALAPPS_BOOKWORM_DIR:-$ROOT/build/realapps-bookworm}
	export CERTS=$ROOT/build/certs
	export SETUP_FAILED=$BATS_FILE_TMPDIR/setup-failed
	export BIG=big
	# The cases count the kernel's contexts exactly: without the shim's self-test (tests/lib.bash).
	export KTLS_SHIM_SELFTEST=${KTLS_SHIM_SELFTEST:-0}
	[ -z "${KTLS_TEST_QUICK:-}" ] || BIG=mid
	local out=$BATS_FILE_TMPDIR/setup.out
	{
		[ -f "$SHIM" ] || echo "no shim at $SHIM (make)"
		[ -x "$APPS/mbed-client" ] || echo "no mbed-client in $APPS (make)"
		"$ROOT/tests/apps/gen-certs" >"$out" 2>&1 || { echo "tests/apps/gen-certs failed:"; cat "$out"; }
		if ! "$ROOT/tests/realapps/setup" "$RA" >"$out" 2>&1; then
			echo "tests/realapps/setup failed (it downloads: inside tools/ktls-vm, which has no" \
				"network, it must have run on the host first):"
			cat "$out"
		fi
		"$ROOT/tests/realapps/setup-bookworm" "$RA12" >"$out" 2>&1 ||
			{ echo "tests/realapps/setup-bookworm failed (downloads, on the host):"; cat "$out"; }
		# The expectation must match what the kernel really can do, or the suite proves nothing.
		if [ "$KTLS_EXPECT" = kernel ]; then
			"$ROOT/build/tools/ktls-probe" >/dev/null 2>&1 ||
				echo "KTLS_EXPECT=kernel but this kernel has no kTLS (run inside tools/ktls-vm)"
		elif "$ROOT/build/tools/ktls-probe" >/dev/null 2>&1; then
			echo "KTLS_EXPECT=user but this kernel has kTLS (KTLS_EXPECT=kernel here)"
		fi
		# TLS 1.3 rekey (Linux 6.14+) changes what a client KeyUpdate gets.
		[[ $("$ROOT/build/tools/ktls-probe" --json 2>/dev/null) == *'"rekey":true'* ]] &&
			echo yes >"$BATS_FILE_TMPDIR/rekey"
		for t in curl openssl ss ip unshare nsenter sysctl; do
			command -v "$t" >/dev/null || echo "$t is missing"
		done
	} >"$SETUP_FAILED"
	if [ ! -s "$SETUP_FAILED" ]; then
		# One line for the TAP log: what is under test.
		echo "# $(awk '$1 ~ /^(lighttpd|micropython|nng-utils|libmbedtls21|libmbedtls14|libc6)$/ { printf "%s %s  ", $1, $2 }' \
			"$RA/versions" "$RA12/versions")" >&3
	fi
}

setup() {
	if [ -s "$SETUP_FAILED" ]; then
		echo "set-up failed:"
		cat "$SETUP_FAILED"
		return 1
	fi
	D=$BATS_TEST_TMPDIR
	LPID='' LIGHTTPD_PID='' PORT=''
	_PIDS=()
	NS=() # a command prefix that enters the test's own network namespace, when it has one
	CURL=(curl -sS --max-time 120 --cacert "$CERTS/ca.crt") # a hang fails, it does not stall
	counters_start
	T0=$SECONDS
}

teardown() {
	local p
	for p in ${LIGHTTPD_PID:+"$LIGHTTPD_PID"} "${_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}

# tls_stat NAME: a counter of /proc/net/tls_stat (of the test's network namespace), 0 without kTLS.
tls_stat() {
	"${NS[@]}" awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' \
		/proc/net/tls_stat 2>/dev/null || echo 0
}
counters_start() { TX0=$(tls_stat TlsTxSw) RX0=$(tls_stat TlsRxSw) ERR0=$(tls_stat TlsDecryptError); }
counters_delta() {
	d_tx=$(($(tls_stat TlsTxSw) - TX0)) d_rx=$(($(tls_stat TlsRxSw) - RX0))
	d_err=$(($(tls_stat TlsDecryptError) - ERR0))
}

# figures MSG: one "# " line in the TAP output with the elapsed time of the test so far.
figures() { echo "#   $* ($((SECONDS - T0)) s)" >&3; }

# show FILE...: the files, indented, for a failing test's output.
show() {
	local f
	for f in "$@"; do
		[ -e "$f" ] || continue
		echo "# --- $f"
		sed 's/^/#   /' "$f" | head -n 60
	done
}

free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 30000))
		[ -z "$("${NS[@]}" ss -Htan "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	return 1
}

# listening PID PORT: waits until PID listens on PORT (0), or has died (1), 15 s at most.
listening() {
	local i
	for ((i = 0; i < 300; i++)); do
		[ -n "$("${NS[@]}" ss -Htln "sport = :$2" 2>/dev/null)" ] && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# start_lighttpd TLS [VAR=value...]: lighttpd with TLS 1.3 or 1.2 only, the shim preloaded (the
# VAR=value words come after, and may replace LD_PRELOAD), logging to $D/shim.log, on a free port.
# $LT: another lighttpd's set-up directory (default $RA; $RA12: Debian 12's, on Mbed TLS 2.28).
# $CONF_CMD: more ssl.openssl.ssl-conf-cmd entries ("CipherString" => "..."). Sets PORT,
# LIGHTTPD_PID and LPID (kept after stop_lighttpd for the log checks).
start_lighttpd() {
	local tls=$1 protos try
	shift
	case $tls in
	1.3) protos='"MinProtocol" => "TLSv1.3"' ;;
	1.2) protos='"MinProtocol" => "TLSv1.2", "MaxProtocol" => "TLSv1.2"' ;;
	*) echo "# start_lighttpd: bad TLS version $tls"; return 1 ;;
	esac
	protos+=${CONF_CMD:+, $CONF_CMD}
	for try in 1 2 3 4 5; do
		PORT=$(free_port) || { echo "# no free port"; return 1; }
		sed -e "s|@WWW@|$RA/www|; s|@PORT@|$PORT|; s|@DIR@|$D|; s|@CERTS@|$CERTS|" \
			-e "s|@HERE@|$BATS_TEST_DIRNAME/realapps|" \
			-e "s|@PROTOCOLS@|$protos|" "$BATS_TEST_DIRNAME/realapps/lighttpd.conf" >"$D/lighttpd.conf"
		"${NS[@]}" env LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$D/shim.log" "$@" \
			"${LT:-$RA}/bin/lighttpd" -D -m "${LT:-$RA}/root/usr/lib/lighttpd" -f "$D/lighttpd.conf" \
			>"$D/lighttpd.out" 2>&1 &
		LIGHTTPD_PID=$! LPID=$!
		listening "$LIGHTTPD_PID" "$PORT" && return 0
		kill "$LIGHTTPD_PID" 2>/dev/null
		wait "$LIGHTTPD_PID" 2>/dev/null
		LIGHTTPD_PID=
		grep -qs 'Address already in use' "$D/lighttpd.out" "$D/lighttpd.error.log" || break
	done
	echo "# lighttpd (TLS $tls) did not start:"
	show "$D/lighttpd.out" "$D/lighttpd.error.log" "$D/shim.log"
	return 1
}

# stop_lighttpd: a graceful stop (SIGTERM), which must end with status 0 and no error logged by
# mod_mbedtls but those matching $LOG_OK (a grep -E pattern). Sets the counter deltas d_tx d_rx d_err.
stop_lighttpd() {
	local st=0
	kill -TERM "$LIGHTTPD_PID"
	wait "$LIGHTTPD_PID" || st=$?
	LIGHTTPD_PID=
	counters_delta
	if [ "$st" -ne 0 ] || grep -s 'mod_mbedtls' "$D/lighttpd.error.log" |
		grep -qvE "${LOG_OK:-^$}"; then
		echo "# lighttpd exit $st, or mod_mbedtls logged an error:"
		show "$D/lighttpd.out" "$D/lighttpd.error.log"
		return 1
	fi
}

# expect_conns WHICH N TLS [WHY]: the shim logged exactly N connection lines containing WHICH (a
# fixed string: "ktlsshim[PID]: " for one process, " role=client " for the clients), all TLS TLS,
# each with both directions in the kernel (kTLS kernel) or in user space because the kernel has no
# kTLS (host); with WHY, in user space for that reason whatever the kernel. Any other line from
# the shim (an error) fails the test too.
expect_conns() {
	local which=$1 n=$2 tls=$3 want lines total good
	if [ -n "${4:-}" ]; then
		want="tx=user($4) rx=user($4)"
	elif [ "$KTLS_EXPECT" = kernel ]; then
		want='tx=kernel rx=kernel'
	else
		want='tx=user(kernel has no kTLS) rx=user(kernel has no kTLS)'
	fi
	if grep -qv ' role=' "$D/shim.log" 2>/dev/null; then
		echo "# the shim logged more than connection lines:"
		show "$D/shim.log"
		return 1
	fi
	lines=$(grep -F -- "$which" "$D/shim.log" 2>/dev/null || true)
	total=$(printf '%s' "$lines" | grep -c . || true)
	good=$(printf '%s\n' "$lines" | grep -F " version=TLSv$tls suite=" | grep -cF " $want" || true)
	if [ "$total" -ne "$n" ] || [ "$good" -ne "$n" ]; then
		echo "# '$which': expected $n lines 'version=TLSv$tls ... $want', got $total ($good matching):"
		show "$D/shim.log"
		return 1
	fi
}

# expect_counters N: the kernel's counters moved by exactly N TX and N RX installs (kTLS kernel)
# or not at all (host); no decryption error (at most $ERR_OK where a case explains why).
expect_counters() {
	local n=$1
	[ "$KTLS_EXPECT" = kernel ] || n=0
	if [ "$d_tx" -ne "$n" ] || [ "$d_rx" -ne "$n" ] || [ "$d_err" -gt "${ERR_OK:-0}" ]; then
		echo "# expected TlsTxSw +$n TlsRxSw +$n TlsDecryptError +0, got +$d_tx +$d_rx +$d_err"
		show "$D/shim.log"
		return 1
	fi
}

sha_of() { awk -v f="$1" '$2 == f { print $1 }' "$RA/www.sha256"; }
size_of() { stat -c %s "$RA/www/$1"; }

# same_as FILE NAME: FILE holds exactly www/NAME.
same_as() {
	local got
	got=$(sha256sum <"$1" | cut -d' ' -f1)
	if [ "$got" != "$(sha_of "$2")" ]; then
		echo "# $1: $(stat -c %s "$1") bytes, sha256 $got; want www/$2: $(size_of "$2") bytes, $(sha_of "$2")"
		return 1
	fi
}

# http_response_is FILE NAME: FILE is an HTTP/1.1 200 response whose body is exactly www/NAME.
http_response_is() {
	local size total got
	size=$(size_of "$2") total=$(stat -c %s "$1")
	[ "$total" -gt "$size" ] && head -c $((total - size)) "$1" >"$1.head"
	if [ "$total" -le "$size" ] || ! grep -qa "^HTTP/1.1 200 OK" "$1.head" ||
		! grep -qai "^Content-Length: $size" "$1.head"; then
		echo "# $1 ($total bytes) is not a 200 response with a $size-byte body:"
		head -c 600 "$1" | sed 's/^/#   /'
		return 1
	fi
	got=$(tail -c "$size" "$1" | sha256sum | cut -d' ' -f1)
	if [ "$got" != "$(sha_of "$2")" ]; then
		echo "# $1: the last $size bytes have sha256 $got; want www/$2: $(sha_of "$2")"
		return 1
	fi
}

# curl_get HTTP OUTPREFIX NAME...: one curl run fetching each www/NAME from lighttpd over one
# connection when it can (HTTP: --http1.1 or --http2); bodies in OUTPREFIX.NAME; curl's per-transfer
# "version connects size" lines in OUTPREFIX.w.
curl_get() {
	local http=$1 out=$2 args=() n
	shift 2
	for n in "$@"; do
		args+=("https://127.0.0.1:$PORT/$n" -o "$out.$n")
	done
	if ! "${CURL[@]}" --fail "$http" \
		-w '%{http_version} %{num_connects} %{size_download}\n' "${args[@]}" >"$out.w" 2>"$out.err"; then
		echo "# curl $http $*:"
		show "$out.w" "$out.err" "$D/lighttpd.error.log" "$D/shim.log"
		return 1
	fi
	for n in "$@"; do
		same_as "$out.$n" "$n"
	done
}

s_client() {
	local tls=$1
	shift
	timeout 120 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$CERTS/ca.crt" \
		-verify_return_error "-tls${tls/./_}" "$@"
}

# request FILE NAME: an HTTP/1.1 GET of www/NAME that asks the server to close afterwards.
request() { printf 'GET /%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$2" >"$1"; }

# Both HTTP versions, each fetching big then small on one kept-alive connection.
curl_case() {
	local tls=$1
	start_lighttpd "$tls"
	curl_get --http1.1 "$D/h1" "$BIG" small
	# One connection for both requests: curl connected once, then reused it.
	[ "$(awk '{ print $1, $2 }' "$D/h1.w" | tr '\n' ' ')" = "1.1 1 1.1 0 " ] || { show "$D/h1.w"; false; }
	curl_get --http2 "$D/h2" "$BIG" small
	[ "$(awk '{ print $1, $2 }' "$D/h2.w" | tr '\n' ' ')" = "2 1 2 0 " ] || { show "$D/h2.w"; false; }
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 2 "$tls"
	expect_counters 2
	figures "TLS $tls: 2 connections, 2 x ($(size_of "$BIG") + $(size_of small)) bytes; TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

@test "lighttpd TLS 1.3: curl HTTP/1.1 and HTTP/2, 64 MiB and small on one kept-alive connection" {
	curl_case 1.3
}

@test "lighttpd TLS 1.2: curl HTTP/1.1 and HTTP/2, 64 MiB and small on one kept-alive connection" {
	curl_case 1.2
}

sclient_case() {
	local tls=$1
	start_lighttpd "$tls"
	request "$D/req.big" "$BIG"
	request "$D/req.small" small
	s_client "$tls" -quiet <"$D/req.big" >"$D/s.big" 2>"$D/s.big.err" || { show "$D/s.big.err"; false; }
	http_response_is "$D/s.big" "$BIG"
	# Resumption: TLS 1.3 PSK from lighttpd's ticket, TLS 1.2 session ticket.
	s_client "$tls" -ign_eof -sess_out "$D/sess" <"$D/req.small" >"$D/s.new" 2>"$D/s.new.err" ||
		{ show "$D/s.new.err"; false; }
	s_client "$tls" -ign_eof -sess_in "$D/sess" <"$D/req.small" >"$D/s.reused" 2>"$D/s.reused.err" ||
		{ show "$D/s.reused.err"; false; }
	grep -qa "^New, TLSv$tls," "$D/s.new" || { show "$D/s.new"; false; }
	grep -qa "^Reused, TLSv$tls," "$D/s.reused" || { show "$D/s.reused"; false; }
	# (s_client prints the ticket it gets among the data: the response need not start a line)
	grep -qa "HTTP/1.1 200 OK" "$D/s.reused" || { show "$D/s.reused"; false; }
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 3 "$tls"
	expect_counters 3
	figures "TLS $tls: s_client $(size_of "$BIG") bytes, then a full and a resumed handshake; TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

@test "lighttpd TLS 1.3: openssl s_client, 64 MiB, and a resumed session" {
	sclient_case 1.3
}

@test "lighttpd TLS 1.2: openssl s_client, 64 MiB, and a resumed session" {
	sclient_case 1.2
}

mbed_client_case() {
	local tls=$1 st=0
	start_lighttpd "$tls"
	request "$D/req" "$BIG"
	env LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$D/shim.log" \
		timeout 120 "$APPS/mbed-client" --port "$PORT" --tls "$tls" --send-file "$D/req" \
		--recv-file "$D/resp" >"$D/client.out" 2>&1 || st=$?
	[ "$st" -eq 0 ] || { echo "# mbed-client exit $st"; show "$D/client.out" "$D/shim.log"; false; }
	http_response_is "$D/resp" "$BIG"
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 1 "$tls"
	expect_conns " role=client " 1 "$tls"
	expect_counters 2
	figures "TLS $tls: mbed-client $(stat -c %s "$D/resp") bytes; both ends shimmed, TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

@test "lighttpd TLS 1.3: mbed-client with the shim too, 64 MiB" {
	mbed_client_case 1.3
}

@test "lighttpd TLS 1.2: mbed-client with the shim too, 64 MiB" {
	mbed_client_case 1.2
}

# Uploads: lighttpd reads a 24 MiB request body (RX, in the kernel on a kTLS kernel) and hands
# it to a CGI that answers with its sha256; HTTP/1.1 and HTTP/2, one connection each.
upload_case() {
	local tls=$1 http
	start_lighttpd "$tls"
	for http in --http1.1 --http2; do
		if ! "${CURL[@]}" --fail "$http" --data-binary "@$RA/www/slow" \
			-H 'Content-Type: application/octet-stream' "https://127.0.0.1:$PORT/sha256" \
			-o "$D/up$http" 2>"$D/up.err"; then
			show "$D/up.err" "$D/lighttpd.error.log" "$D/shim.log"
			false
		fi
		if [ "$(head -n 1 "$D/up$http")" != "$(sha_of slow)" ] ||
			[ "$(sed -n 2p "$D/up$http")" != "$(size_of slow)" ]; then
			echo "# upload $http: the CGI got $(tr '\n' ' ' <"$D/up$http"); want $(sha_of slow) $(size_of slow)"
			false
		fi
	done
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 2 "$tls"
	expect_counters 2
	figures "TLS $tls: 2 uploads (HTTP/1.1, HTTP/2) of $(size_of slow) bytes, sha256 matches; TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

@test "lighttpd TLS 1.3: 24 MiB uploads read by lighttpd (HTTP/1.1 and HTTP/2)" {
	upload_case 1.3
}

@test "lighttpd TLS 1.2: 24 MiB uploads read by lighttpd (HTTP/1.1 and HTTP/2)" {
	upload_case 1.2
}

parallel_case() {
	local tls=$1 n=50 i
	start_lighttpd "$tls"
	local args=()
	for ((i = 0; i < n; i++)); do args+=("https://127.0.0.1:$PORT/mid" -o "$D/p.$i"); done
	# HTTP/1.1 cannot multiplex: 50 transfers at once are 50 connections.
	if ! "${CURL[@]}" --fail --http1.1 --parallel --parallel-immediate \
		--parallel-max "$n" -w '%{num_connects}\n' "${args[@]}" >"$D/p.w" 2>"$D/p.err"; then
		show "$D/p.err" "$D/lighttpd.error.log"
		false
	fi
	# One sha256sum for all: process start-up is what costs in User-Mode Linux.
	local want bad files=("$D"/p.[0-9]*)
	want=$(sha_of mid)
	bad=$(cd "$D" && sha256sum p.[0-9]* | awk -v w="$want" '$1 != w { print $2 }')
	if [ "${#files[@]}" -ne "$n" ] || [ -n "$bad" ]; then
		echo "# ${#files[@]} files; not www/mid: $bad"
		false
	fi
	[ "$(awk '{ s += $1 } END { print s }' "$D/p.w")" -eq "$n" ] || { show "$D/p.w"; false; }
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " "$n" "$tls"
	expect_counters "$n"
	figures "TLS $tls: $n concurrent connections x $(size_of mid) bytes; TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

@test "lighttpd TLS 1.3: 50 concurrent curl clients" {
	parallel_case 1.3
}

@test "lighttpd TLS 1.2: 50 concurrent curl clients" {
	parallel_case 1.2
}

# 100 requests on one kept-alive connection; then clients that give up in the middle of 64 MiB
# (curl --max-time: the socket closes with data in flight) — lighttpd must carry on, serve the
# next client and log no TLS error.
keepalive_abort_case() {
	local tls=$1 i st
	start_lighttpd "$tls"
	"${CURL[@]}" --fail --http1.1 "https://127.0.0.1:$PORT/small?[1-100]" \
		-o "$D/k.#1" -w '%{num_connects}\n' >"$D/k.w" 2>"$D/k.err" || { show "$D/k.err"; false; }
	local want bad files=("$D"/k.[0-9]*)
	want=$(sha_of small)
	bad=$(cd "$D" && sha256sum k.[0-9]* | awk -v w="$want" '$1 != w { n++ } END { print n + 0 }')
	if [ "${#files[@]}" -ne 100 ] || [ "$bad" -ne 0 ]; then
		echo "# ${#files[@]} bodies, $bad not www/small"
		false
	fi
	[ "$(awk '{ s += $1 } END { print s }' "$D/k.w")" -eq 1 ] || { echo "# not one connection"; show "$D/k.w"; false; }
	for i in 1 2 3; do
		st=0
		curl -sS --cacert "$CERTS/ca.crt" --http1.1 --limit-rate 4M --max-time 1 \
			"https://127.0.0.1:$PORT/big" -o /dev/null 2>/dev/null || st=$?
		[ "$st" -eq 28 ] || { echo "# curl --max-time 1 exit $st, want 28 (timeout)"; false; }
	done
	curl_get --http2 "$D/after" small
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 5 "$tls"
	expect_counters 5
	figures "TLS $tls: 100 requests on 1 connection, 3 aborted 64 MiB transfers, then 1 more; TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

@test "lighttpd TLS 1.3: 100 requests on one connection; clients vanishing mid-transfer" {
	keepalive_abort_case 1.3
}

@test "lighttpd TLS 1.2: 100 requests on one connection; clients vanishing mid-transfer" {
	keepalive_abort_case 1.2
}

# A network namespace of its own with small TCP buffers, so that lighttpd's 256 KiB write rounds
# fill the socket: with a slow reader (curl --limit-rate) it sees WANT_WRITE and retries with
# mbedtls_ssl_write(ssl, NULL, pending_len). libtrace-write.so (in front of the shim) counts those
# calls and checks that each completed with the length of the write it finishes.
slow_reader_case() {
	local tls=$1
	unshare --net sleep 600 &
	local holder=$!
	_PIDS+=("$holder")
	NS=(nsenter -t "$holder" -n)
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink "/proc/$holder/ns/net")" != "$(readlink /proc/self/ns/net)" ] && break
		sleep 0.05
	done
	"${NS[@]}" ip link set lo up
	"${NS[@]}" sysctl -qw net.ipv4.tcp_wmem='4096 16384 65536' net.ipv4.tcp_rmem='4096 32768 131072'
	counters_start
	start_lighttpd "$tls" LD_PRELOAD="$RA/libtrace-write.so:$SHIM" TRACE_WRITE_FILE="$D/trace"
	"${NS[@]}" "${CURL[@]}" --fail --http1.1 --limit-rate 12M \
		"https://127.0.0.1:$PORT/slow" -o "$D/slow" 2>"$D/curl.err" || { show "$D/curl.err"; false; }
	same_as "$D/slow" slow
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 1 "$tls"
	expect_counters 1
	local t
	t=$(cat "$D/trace")
	[[ $t =~ want_write=([0-9]+)\ null_retries=([0-9]+)\ null_completed=([0-9]+)\ null_mismatch=([0-9]+) ]] ||
		{ echo "# no trace: $t"; false; }
	local ww=${BASH_REMATCH[1]} nr=${BASH_REMATCH[2]} nc=${BASH_REMATCH[3]} nm=${BASH_REMATCH[4]}
	if [ "$ww" -lt 1 ] || [ "$nr" -lt 1 ] || [ "$nc" -ne "$nr" ] || [ "$nm" -ne 0 ]; then
		echo "# expected WANT_WRITE and completed NULL-buffer retries: $t"
		false
	fi
	figures "TLS $tls: slow reader $(size_of slow) bytes; ${t#trace-write pid=* }"
}

@test "lighttpd: slow reader, small socket buffers: WANT_WRITE and NULL-buffer retries, TLS 1.3" {
	slow_reader_case 1.3
}

@test "lighttpd: slow reader, small socket buffers: WANT_WRITE and NULL-buffer retries, TLS 1.2" {
	slow_reader_case 1.2
}

# One lighttpd, one connection per kTLS suite the client asks for (OpenSSL names; lighttpd's
# Mbed TLS names in the log), 1 MiB each.
suites_case() {
	local tls=$1 opt=$2 i=0 c
	shift 2
	start_lighttpd "$tls"
	local pairs=("$@")
	for ((i = 0; i < ${#pairs[@]}; i += 2)); do
		"${CURL[@]}" --fail "$opt" "${pairs[i]}" "https://127.0.0.1:$PORT/mid" \
			-o "$D/mid.$i" 2>"$D/curl.err" || { echo "# curl $opt ${pairs[i]}"; show "$D/curl.err"; false; }
		same_as "$D/mid.$i" mid
	done
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " $((${#pairs[@]} / 2)) "$tls"
	for ((i = 1; i < ${#pairs[@]}; i += 2)); do
		c=$(grep -F "ktlsshim[$LPID]: " "$D/shim.log" | sed -n "$((i / 2 + 1))p")
		[[ $c == *" suite=${pairs[i]} "* ]] || { echo "# connection $((i / 2 + 1)) is not ${pairs[i]}: $c"; false; }
	done
	expect_counters $((${#pairs[@]} / 2))
	figures "TLS $tls: $(printf '%s ' "${pairs[@]}" | awk '{ for (i = 2; i <= NF; i += 2) printf "%s ", $i }')"
}

@test "lighttpd TLS 1.3: every kTLS suite it offers (AES-128/256-GCM, CHACHA20-POLY1305, AES-128-CCM)" {
	suites_case 1.3 --tls13-ciphers \
		TLS_AES_128_GCM_SHA256 TLS1-3-AES-128-GCM-SHA256 \
		TLS_AES_256_GCM_SHA384 TLS1-3-AES-256-GCM-SHA384 \
		TLS_CHACHA20_POLY1305_SHA256 TLS1-3-CHACHA20-POLY1305-SHA256 \
		TLS_AES_128_CCM_SHA256 TLS1-3-AES-128-CCM-SHA256
}

@test "lighttpd TLS 1.2: every kTLS suite it offers with an RSA key (AES-128/256-GCM, CHACHA20-POLY1305)" {
	suites_case 1.2 --ciphers \
		ECDHE-RSA-AES128-GCM-SHA256 TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256 \
		ECDHE-RSA-AES256-GCM-SHA384 TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384 \
		ECDHE-RSA-CHACHA20-POLY1305 TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256
}

@test "lighttpd TLS 1.2 with a CBC suite: the shim says why and stays out of the way" {
	CONF_CMD='"CipherString" => "TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256"' start_lighttpd 1.2
	curl_get --http1.1 "$D/cbc" mid
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 1 1.2 "suite not supported by kTLS"
	grep -q 'suite=TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256 ' "$D/shim.log"
	expect_counters 0
	figures "$(cut -d' ' -f2- "$D/shim.log")"
}

# What Mbed TLS 3.6 does with a post-handshake message it does not support, the shim must do with
# the records in the kernel: the same alert on the wire and the same error for lighttpd. TLS 1.3:
# a client KeyUpdate (Mbed TLS: UNEXPECTED_MESSAGE, -0x7700; lighttpd closes). TLS 1.2: a client
# renegotiation (warning no_renegotiation; OpenSSL gives up with a fatal alert, -0x7780).
# openssl s_client's command letters (k, R) drive it; -msg shows the records.
# interactive_s_client TLS: lighttpd, and s_client -msg connected to it with its input on fd 7 (a
# FIFO), its records in $D/out; returns once the handshake is over. Sets SPID.
interactive_s_client() {
	local tls=$1 i
	start_lighttpd "$tls"
	mkfifo "$D/in"
	s_client "$tls" -msg -legacy_renegotiation -legacy_server_connect <"$D/in" >"$D/out" 2>"$D/err" &
	SPID=$!
	_PIDS+=("$SPID")
	exec 7>"$D/in"
	# The handshake is over when the shim logs the connection (s_client's own output is buffered).
	for ((i = 0; i < 300; i++)); do
		grep -qsF "ktlsshim[$LPID]: " "$D/shim.log" && return
		sleep 0.05
	done
}

post_handshake_case() {
	local tls=$1 cmd=$2 st=0 i
	interactive_s_client "$tls"
	local spid=$SPID
	# The records from the client's post-handshake message on (tickets aside: they may come later).
	local from n last
	if [ "$tls" = 1.3 ]; then
		from='>>> TLS 1.3, Handshake, KeyUpdate' n=1 last='>>> TLS 1.3, Alert, warning close_notify'
		printf '%s\n' "$from" '<<< TLS 1.3, Alert, warning close_notify' "$last" >"$D/want"
		local err='(-0x7700)'
	else
		from='>>> TLS 1.2, Handshake, ClientHello' n=2 last='>>> TLS 1.2, Alert, fatal handshake_failure'
		printf '%s\n' "$from" '<<< TLS 1.2, Alert, warning no_renegotiation' "$last" >"$D/want"
		local err='(-0x7780)'
	fi
	# (subshells: once the server closed, s_client is gone and a write to the FIFO is a SIGPIPE)
	(printf '%s\n' "$cmd" >&7) 2>/dev/null || true
	# The request goes once lighttpd has failed on the message (1 s at most, as s_client must
	# read the two lines apart).
	for ((i = 0; i < 20; i++)); do
		grep -qsF -- "$err" "$D/lighttpd.error.log" && break
		sleep 0.05
	done
	(printf 'GET /small HTTP/1.1\r\nHost: localhost\r\n\r\n' >&7) 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$spid" 2>/dev/null || break
		# (s_client's -msg output is buffered: lighttpd's log says when the exchange is over)
		grep -qsF -- "$err" "$D/lighttpd.error.log" && sleep 0.5 && break
		sleep 0.05
	done
	exec 7>&-
	wait "$spid" || st=$?
	stop_lighttpd
	grep -a -E '^(<<<|>>>) .*(Handshake|Alert)' "$D/out" | grep -v NewSessionTicket |
		sed 's/ \[length [0-9a-f]*\]//' | awk -v m="$from" -v n="$n" '$0 == m { k++ } k >= n' >"$D/records"
	diff "$D/want" "$D/records" || { show "$D/out" "$D/err" "$D/shim.log"; false; }
	grep -qF "Reading mbedtls: SSL - " "$D/lighttpd.error.log" && grep -qF "$err" "$D/lighttpd.error.log" ||
		{ show "$D/lighttpd.error.log"; false; }
	! grep -qa 'HTTP/1.1' "$D/out"
	if [ "$tls" = 1.3 ] && [ "$KTLS_EXPECT" = kernel ]; then
		# The shim says why it cannot follow the KeyUpdate (the kernel cannot rekey).
		grep -q 'KeyUpdate received; the kernel cannot rekey' "$D/shim.log" || { show "$D/shim.log"; false; }
		sed -i '/KeyUpdate received; /d' "$D/shim.log"
	fi
	expect_conns "ktlsshim[$LPID]: " 1 "$tls"
	# TLS 1.3: the client's request after its KeyUpdate is under its new key. lighttpd, having
	# sent close_notify, drains the socket (recvfrom MSG_DONTWAIT) before close(); with RX in the
	# kernel that read decrypts, with the old key, and fails (EBADMSG, TlsDecryptError +1, when the
	# request got there first). Mbed TLS alone never decrypts it. Nothing else differs.
	ERR_OK=$([ "$tls" = 1.3 ] && echo 1 || echo 0) expect_counters 1
	figures "TLS $tls: s_client '$cmd': $(sed -n 2p "$D/records" | cut -d' ' -f2-), then $(sed -n 3p "$D/records" | cut -d' ' -f2-); lighttpd: $err; TlsDecryptError +$d_err"
}

# With kernel rekey (6.14+) the shim follows the client's KeyUpdate: lighttpd, which Mbed TLS alone
# would have failed, answers the request sent under the client's next key.
keyupdate_followed_case() {
	local st=0 rk0 i
	rk0=$(tls_stat TlsRxRekeyOk)
	interactive_s_client 1.3
	(printf 'k\n' >&7) 2>/dev/null || true
	# The request goes once the kernel has the client's next RX key (10 s at most).
	for ((i = 0; i < 200; i++)); do
		[ "$(tls_stat TlsRxRekeyOk)" -gt "$rk0" ] && break
		sleep 0.05
	done
	(printf 'GET /small HTTP/1.1\r\nHost: localhost\r\n\r\n' >&7) 2>/dev/null || true
	sleep 2
	exec 7>&- # s_client ends the connection at the end of its input
	wait "$SPID" || st=$?
	stop_lighttpd
	grep -a -E '^(<<<|>>>) .*(Handshake|Alert)|^HTTP/' "$D/out" | grep -v NewSessionTicket |
		sed 's/ \[length [0-9a-f]*\]//' >"$D/records"
	grep -q '^>>> TLS 1.3, Handshake, KeyUpdate' "$D/records" && grep -q '^HTTP/1.1 200 OK' "$D/records" ||
		{ show "$D/records" "$D/err" "$D/shim.log" "$D/lighttpd.error.log"; false; }
	expect_conns "ktlsshim[$LPID]: " 1 1.3
	expect_counters 1
	local rekeys=$(($(tls_stat TlsRxRekeyOk) - rk0))
	[ "$rekeys" -eq 1 ] || { echo "# TlsRxRekeyOk +$rekeys, want +1"; false; }
	figures "TLS 1.3: s_client 'k', then GET: HTTP/1.1 200 under the client's next key; TlsRxRekeyOk +$rekeys"
}

@test "lighttpd TLS 1.3: a client KeyUpdate: followed where the kernel rekeys, else Mbed TLS's answer" {
	if [ -s "$BATS_FILE_TMPDIR/rekey" ] && [ "$KTLS_EXPECT" = kernel ]; then
		keyupdate_followed_case
		return
	fi
	LOG_OK='Reading mbedtls: SSL - An unexpected message was received from our peer \(-0x7700\)'
	post_handshake_case 1.3 k
}

@test "lighttpd TLS 1.2: a client renegotiation gets what Mbed TLS alone answers" {
	LOG_OK='Reading mbedtls: SSL - A fatal alert message was received from our peer \(-0x7780\)'
	post_handshake_case 1.2 R
}

micropython_case() {
	local tls=$1 st=0
	start_lighttpd "$tls"
	env LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$D/shim.log" \
		timeout 60 "$RA/bin/micropython" "$BATS_TEST_DIRNAME/realapps/fetch.py" 127.0.0.1 "$PORT" \
		/small "$CERTS/ca.crt" "$D/mp.small" >"$D/mp.out" 2>&1 || st=$?
	[ "$st" -eq 0 ] || { echo "# micropython exit $st"; show "$D/mp.out" "$D/shim.log"; false; }
	grep -q '^HTTP/1.1 200 OK' "$D/mp.out"
	same_as "$D/mp.small" small
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 1 "$tls"
	# MicroPython's BIO is its own: the shim must say so and stay in user space, on any kernel.
	expect_conns " role=client " 1 "$tls" "custom BIO (socket not proven)"
	expect_counters 1
	figures "TLS $tls: micropython $(size_of small) bytes; $(grep -F " role=client " "$D/shim.log" | cut -d' ' -f2-)"
}

@test "MicroPython tls client (custom BIO) against lighttpd TLS 1.3: byte-exact, clean fallback" {
	micropython_case 1.3
}

@test "MicroPython tls client (custom BIO) against lighttpd TLS 1.2: byte-exact, clean fallback" {
	micropython_case 1.2
}

@test "nngcat req/rep over tls+tcp, both ends shimmed: byte-exact messages, clean fallback" {
	head -c 300000 /dev/urandom >"$D/request"
	head -c 200000 /dev/urandom >"$D/reply"
	local shim=(env LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$D/shim.log")
	local try rpid='' n=3 i st
	for try in 1 2 3 4 5; do
		PORT=$(free_port)
		"${shim[@]}" timeout 60 "$RA/bin/nngcat" --rep --listen "tls+tcp://127.0.0.1:$PORT" \
			--cert "$CERTS/server-rsa.crt" --key "$CERTS/server-rsa.key" --raw --count "$n" \
			--file "$D/reply" >"$D/rep.out" 2>"$D/rep.err" &
		rpid=$!
		_PIDS+=("$rpid")
		listening "$rpid" "$PORT" && break
		rpid=''
		grep -qs 'in use' "$D/rep.err" || break
	done
	[ -n "$rpid" ] || { echo "# nngcat --rep did not listen"; show "$D/rep.err"; false; }
	for ((i = 0; i < n; i++)); do
		st=0
		"${shim[@]}" timeout 60 "$RA/bin/nngcat" --req --dial "tls+tcp://localhost:$PORT" \
			--cacert "$CERTS/ca.crt" --raw --file "$D/request" >"$D/req.$i.out" 2>"$D/req.$i.err" || st=$?
		[ "$st" -eq 0 ] || { echo "# nngcat --req exit $st"; show "$D/req.$i.err" "$D/rep.err"; false; }
		cmp "$D/req.$i.out" "$D/reply"
	done
	st=0
	wait "$rpid" || st=$?
	[ "$st" -eq 0 ] || { echo "# nngcat --rep exit $st"; show "$D/rep.err"; false; }
	# The replier printed each request it got, back to back.
	cat "$D/request" "$D/request" "$D/request" | cmp - "$D/rep.out"
	counters_delta
	# nng drives Mbed TLS through its own buffers: no socket the shim can prove, on any kernel.
	expect_conns " role=server " "$n" 1.3 "custom BIO (socket not proven)"
	expect_conns " role=client " "$n" 1.3 "custom BIO (socket not proven)"
	# one line per process on the client side: each nngcat --req made one connection
	[ "$(grep -F " role=client " "$D/shim.log" | cut -d: -f1 | sort -u | wc -l)" -eq "$n" ]
	expect_counters 0
	figures "$n exchanges of 300000 + 200000 bytes; $(grep -F " role=server " "$D/shim.log" | head -n 1 | cut -d' ' -f2-)"
}

# Inside the private root: one Mbed TLS per process, the root's Debian 13 3.6 build (the shim links
# none and uses the program's), and every other library from the root, none from the host.
@test "private root: one Mbed TLS 3.6 in each program, every library from Debian 13" {
	local prog
	start_lighttpd 1.3 LD_DEBUG=libs LD_DEBUG_OUTPUT="$D/ld.lighttpd"
	stop_lighttpd
	LD_PRELOAD="$SHIM" LD_DEBUG=libs LD_DEBUG_OUTPUT="$D/ld.micropython" \
		"$RA/bin/micropython" -c 'import tls'
	LD_PRELOAD="$SHIM" LD_DEBUG=libs LD_DEBUG_OUTPUT="$D/ld.nngcat" "$RA/bin/nngcat" --version >/dev/null
	local want
	want=$(sha256sum <"$RA/root/usr/lib/x86_64-linux-gnu/libmbedtls.so.21" | cut -d' ' -f1)
	for prog in lighttpd micropython nngcat; do
		local inits mbed
		inits=$(cat "$D/ld.$prog".* | sed -n 's/.*calling init: //p' | sort -u)
		mbed=$(grep '/libmbedtls\.so' <<<"$inits" || true)
		if [ "$(grep -c . <<<"$mbed")" -ne 1 ]; then
			echo "# $prog: $(grep -c . <<<"$mbed") copies of libmbedtls loaded: $mbed"
			false
		fi
		if [ "$(sha256sum <"$mbed" | cut -d' ' -f1)" != "$want" ]; then
			echo "# $prog loaded $mbed, which is not the private root's libmbedtls.so.21"
			false
		fi
		# Every object from the private root, the build (shim and its Mbed TLS copy) or the
		# loader's virtual objects; nothing from the host's /lib or /usr/lib.
		local stray
		stray=$(grep -v -e "^$RA/" -e "^$ROOT/build/" <<<"$inits" || true)
		[ -z "$stray" ] || { echo "# $prog loaded from outside the root: $stray"; false; }
		figures "$prog: $(basename "$mbed") from $(dirname "$mbed")"
	done
}

# Debian 12's own lighttpd 1.4.69 + mod_mbedtls on Mbed TLS 2.28, which has no offload adapter yet:
# lighttpd dlopen()s mod_mbedtls, and so libmbedtls.so.14, after start. The shim, linking no Mbed
# TLS, finds that copy at first use, says once that it passes 2.28 through, and stays out of the
# way (a shim that pulled its own 3.6 into the process made lighttpd abort at start).
# pass_through_line: the shim's only line says it passes Mbed TLS 2.28 through.
pass_through_line() {
	local n
	n=$(grep -c . "$D/shim.log" 2>/dev/null || true)
	if [ "$n" -ne 1 ] || ! grep -qE \
		'^ktlsshim\[[0-9]+\]: Mbed TLS 2\.28\.[0-9]+ \(libmbedtls\.so\.14\): .*passing every call through$' \
		"$D/shim.log"; then
		echo "# want one line: Mbed TLS 2.28.x (libmbedtls.so.14): ... passing every call through"
		show "$D/shim.log" "$D/lighttpd.out"
		return 1
	fi
}

@test "Debian 12 lighttpd 1.4.69 on Mbed TLS 2.28: starts, TLS 1.2 byte-exact, the shim passes through" {
	LT=$RA12 start_lighttpd 1.2
	"${CURL[@]}" -v --fail --http1.1 --tlsv1.2 "https://127.0.0.1:$PORT/$BIG" -o "$D/big" 2>"$D/curl.err" ||
		{ show "$D/curl.err" "$D/lighttpd.out" "$D/shim.log"; false; }
	grep -q 'SSL connection using TLSv1.2' "$D/curl.err" || { show "$D/curl.err"; false; }
	same_as "$D/big" "$BIG"
	curl_get --http1.1 "$D/s" small
	stop_lighttpd
	pass_through_line
	expect_counters 0
	figures "2.28: $(size_of "$BIG") + $(size_of small) bytes; $(cut -d' ' -f2- "$D/shim.log")"
}

# make install, then the installed library with the build's Mbed TLS copy hidden (an empty tmpfs
# over build/mbedtls, in a private mount namespace): it loads on its own, passes Debian 12's 2.28
# lighttpd through and offloads Debian 13's 3.6 one.
@test "make install: the installed shim needs nothing from build/ (2.28 passes through, 3.6 offloads)" {
	local readelf
	readelf=$(readelf -d "$SHIM")
	if grep -qE 'NEEDED.*libmbed|RPATH|RUNPATH' <<<"$readelf"; then
		echo "# $SHIM links Mbed TLS or has a run path:"
		grep -E 'NEEDED|RPATH|RUNPATH' <<<"$readelf"
		false
	fi
	make -s -C "$ROOT" install DESTDIR="$D/inst" PREFIX=/usr/local >"$D/install.out" 2>&1 ||
		{ show "$D/install.out"; false; }
	local inst=$D/inst/usr/local/lib/libktlsshim.so
	local hide=(unshare -m sh -c 'mount -t tmpfs tmpfs "$0" && exec "$@"' "$ROOT/build/mbedtls")
	LT=$RA12 start_lighttpd 1.2 LD_PRELOAD="$inst" "${hide[@]}"
	curl_get --http1.1 "$D/old" small
	stop_lighttpd
	pass_through_line
	expect_counters 0
	rm -f "$D/shim.log"
	counters_start
	start_lighttpd 1.3 LD_PRELOAD="$inst" "${hide[@]}"
	curl_get --http1.1 "$D/new" "$BIG"
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 1 1.3
	expect_counters 1
	figures "installed $(basename "$inst") from $D/inst, build/mbedtls hidden: 3.6 TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

# The wrappers without a usable Mbed TLS, called directly (python3 ctypes): no Mbed TLS at all (a
# wrapper returns MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE), 2.28 alone (its own answer; the 3.6-only
# wrappers do nothing), 2.28 and 3.6 both loaded (pass-through). Never a crash; one line each.
@test "pass-through: no Mbed TLS, 3.6-only wrappers under 2.28, two copies: no crash, one line each" {
	local lib36=$ROOT/build/mbedtls/usr/lib/x86_64-linux-gnu lib228=$RA12/root/usr/lib/x86_64-linux-gnu
	cat >"$D/calls.py" <<'PY'
import ctypes, sys
for path in sys.argv[2:]:
    ctypes.CDLL(path)
shim = ctypes.CDLL(sys.argv[1])
ssl, conf = ctypes.create_string_buffer(65536), ctypes.create_string_buffer(65536)
shim.mbedtls_ssl_init(ssl)
shim.mbedtls_ssl_config_init(conf)
shim.mbedtls_ssl_set_export_keys_cb(ssl, None, None)
shim.mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(conf, 1)
print("read %d" % shim.mbedtls_ssl_read(ssl, ssl, 1))
shim.mbedtls_ssl_free(ssl)
shim.mbedtls_ssl_config_free(conf)
PY
	run_calls() {
		rm -f "$D/shim.log"
		LD_LIBRARY_PATH="$lib36:$lib228" LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info \
			KTLS_SHIM_LOG_FILE="$D/shim.log" python3 "$D/calls.py" "$SHIM" "$@" >"$D/calls.out" 2>&1 ||
			{ echo "# python3 exit $?"; show "$D/calls.out" "$D/shim.log"; return 1; }
	}
	# expect READ LINE: what mbedtls_ssl_read returned, and the shim's only line.
	expect() {
		grep -qx "read $1" "$D/calls.out" && [ "$(grep -c . "$D/shim.log")" -eq 1 ] &&
			grep -qE "^ktlsshim\[[0-9]+\]: $2; passing every call through$" "$D/shim.log" ||
			{ echo "# want read $1 and '$2'"; show "$D/calls.out" "$D/shim.log"; return 1; }
	}
	run_calls
	expect -28800 'no Mbed TLS in the process'
	run_calls "$lib228/libmbedtls.so.14"
	expect -28928 'Mbed TLS 2\.28\.[0-9]+ \(libmbedtls\.so\.14\): no adapter for this version yet'
	run_calls "$lib228/libmbedtls.so.14" "$lib36/libmbedtls.so.21"
	expect -28928 'two Mbed TLS copies in the process'
	figures "no Mbed TLS, 2.28 alone, 2.28 + 3.6: pass-through, one line each"
}
