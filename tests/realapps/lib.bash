# SPDX-License-Identifier: Apache-2.0
# Shared by tests/realapps.bats (Debian 13's programs on Mbed TLS 3.6) and
# tests/realapps-bookworm.bats (Debian 12's on 2.28): the set-up of both private roots, lighttpd,
# the shim's log and the kernel's counters, the clients. Loaded with bats' `load`.

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
		for t in curl openssl ss ip unshare nsenter sysctl git; do
			command -v "$t" >/dev/null || echo "$t is missing"
		done
	} >"$SETUP_FAILED"
	if [ ! -s "$SETUP_FAILED" ]; then
		# One line for the TAP log: what is under test.
		echo "# $(awk '$1 ~ /^(lighttpd|micropython|nng-utils|libgit2-1.9|privoxy|mongrel2-core|libmbedtls21|libmbedtls14|libc6)$/ { printf "%s %s  ", $1, $2 }' \
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
# $CONF_CMD: more ssl.openssl.ssl-conf-cmd entries ("CipherString" => "..."); $CONF_MORE: a file
# of tests/realapps appended to the configuration (lighttpd-git.conf). Sets PORT,
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
			-e "s|@HERE@|$BATS_TEST_DIRNAME/realapps|; s|@GIT_HTTP_BACKEND@|$(git --exec-path)/git-http-backend|" \
			-e "s|@PROTOCOLS@|$protos|" "$BATS_TEST_DIRNAME/realapps/lighttpd.conf" \
			${CONF_MORE:+"$BATS_TEST_DIRNAME/realapps/$CONF_MORE"} >"$D/lighttpd.conf"
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

# expect_bio_fallback WHICH N TLS [WHY]: exactly N connection lines containing WHICH, all TLS TLS,
# each keeping both directions in Mbed TLS with a reason "custom BIO: " followed by WHY (a grep -E
# pattern; default: any). HOST_OK=1: on the host (no kTLS) "kernel has no kTLS" does as well.
expect_bio_fallback() {
	local which=$1 n=$2 tls=$3 why="custom BIO: (${4:-})" lines total good
	[ "${HOST_OK:-}" != 1 ] || [ "$KTLS_EXPECT" = kernel ] || why="($why|kernel has no kTLS)"
	lines=$(grep -F -- "$which" "$D/shim.log" 2>/dev/null || true)
	total=$(printf '%s' "$lines" | grep -c . || true)
	good=$(printf '%s\n' "$lines" | grep -F " version=TLSv$tls suite=" | grep -E " tx=user\($why" |
		grep -cE " rx=user\($why" || true)
	if [ "$total" -ne "$n" ] || [ "$good" -ne "$n" ]; then
		echo "# '$which': expected $n lines 'version=TLSv$tls ... tx=user($why...) rx=user($why...)', got $total ($good matching):"
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

# expect_served N TLS [OTHERS]: lighttpd's N connections, each TLS TLS, are the shim's with both
# directions in the kernel (kTLS kernel) or in user space for the kernel's lack of kTLS (host), and
# the kernel's counters moved by N plus OTHERS (connections of other shimmed processes).
expect_served() {
	expect_conns "ktlsshim[$LPID]: " "$1" "$2"
	expect_counters $(($1 + ${3:-0}))
}

# ---- the lighttpd cases both suites run ($LT: which lighttpd) ----

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
	expect_served 2 "$tls"
	figures "TLS $tls: 2 connections, 2 x ($(size_of "$BIG") + $(size_of small)) bytes; TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

mbed_client_case() {
	local tls=$1 st=0
	start_lighttpd "$tls"
	request "$D/req" "$BIG"
	mkdir -p "$D/client" # the client's shim log of its own
	env LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$D/client/shim.log" \
		timeout 120 "$APPS/mbed-client" --port "$PORT" --tls "$tls" --send-file "$D/req" \
		--recv-file "$D/resp" >"$D/client.out" 2>&1 || st=$?
	[ "$st" -eq 0 ] || { echo "# mbed-client exit $st"; show "$D/client.out" "$D/client/shim.log"; false; }
	http_response_is "$D/resp" "$BIG"
	stop_lighttpd
	D=$D/client expect_conns " role=client " 1 "$tls"
	expect_served 1 "$tls" 1
	figures "TLS $tls: mbed-client $(stat -c %s "$D/resp") bytes; both ends shimmed, TlsTxSw +$d_tx TlsRxSw +$d_rx"
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
	expect_served 2 "$tls"
	figures "TLS $tls: 2 uploads (HTTP/1.1, HTTP/2) of $(size_of slow) bytes, sha256 matches; TlsTxSw +$d_tx TlsRxSw +$d_rx"
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
	expect_served "$n" "$tls"
	figures "TLS $tls: $n concurrent connections x $(size_of mid) bytes; TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

# A network namespace of its own with small TCP buffers, so that lighttpd's 256 KiB write rounds
# fill the socket: with a slow reader (curl --limit-rate) it sees WANT_WRITE and retries with
# mbedtls_ssl_write(ssl, NULL, pending_len). libtrace-write.so (in front of the shim) counts those
# calls and checks that each completed with the length of the write it finishes. NULL_RETRIES=none:
# this lighttpd must retry with the data instead, none with NULL (1.4.69 retries with NULL only
# when Mbed TLS's private out_left says bytes are buffered, which a kernel-owned TX never leaves).
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
	expect_served 1 "$tls"
	local t
	t=$(cat "$D/trace")
	[[ $t =~ want_write=([0-9]+)\ null_retries=([0-9]+)\ null_completed=([0-9]+)\ null_mismatch=([0-9]+) ]] ||
		{ echo "# no trace: $t"; false; }
	local ww=${BASH_REMATCH[1]} nr=${BASH_REMATCH[2]} nc=${BASH_REMATCH[3]} nm=${BASH_REMATCH[4]}
	local want_nr=1
	[ "${NULL_RETRIES:-}" != none ] || want_nr=0
	if [ "$ww" -lt 1 ] || [ "$nc" -ne "$nr" ] || [ "$nm" -ne 0 ] ||
		{ [ "$want_nr" = 1 ] && [ "$nr" -lt 1 ]; } || { [ "$want_nr" = 0 ] && [ "$nr" -ne 0 ]; }; then
		echo "# expected WANT_WRITE and $([ "$want_nr" = 1 ] && echo completed || echo no) NULL-buffer retries: $t"
		false
	fi
	figures "TLS $tls: slow reader $(size_of slow) bytes; ${t#trace-write pid=* }"
}
