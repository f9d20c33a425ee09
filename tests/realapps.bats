#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# Real programs nobody here wrote, unchanged, with the shim preloaded: Debian 13's lighttpd 1.4.79
# with mod_mbedtls on Debian 13's Mbed TLS 3.6, run from the private root tests/realapps/setup
# prepares (their glibc is newer than this system's). Its peers are curl, openssl s_client and our
# mbed-client (shimmed too). The programs with BIO callbacks of their own (MicroPython, libgit2,
# nngcat) are in tests/realapps-bio.bats; the last case here checks the root for all of them.
#
# The same cases run inside tools/ktls-vm with KTLS_EXPECT=kernel, where every lighttpd connection
# must move TX and RX to the kernel (its log line says tx=kernel rx=kernel and /proc/net/tls_stat
# counts exactly the shimmed connections), and on the host (no kTLS) with KTLS_EXPECT=user, where
# the same transfers must succeed through the fallback.
#
# The first run downloads the programs (on the host: the VM has no network). A set-up problem
# fails every test with its reason; nothing is skipped. KTLS_TEST_QUICK=1: the 64 MiB transfers
# move the 1 MiB file instead.
load realapps/lib

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

@test "lighttpd TLS 1.3: mbed-client with the shim too, 64 MiB" {
	mbed_client_case 1.3
}

@test "lighttpd TLS 1.2: mbed-client with the shim too, 64 MiB" {
	mbed_client_case 1.2
}

@test "lighttpd TLS 1.3: 24 MiB uploads read by lighttpd (HTTP/1.1 and HTTP/2)" {
	upload_case 1.3
}

@test "lighttpd TLS 1.2: 24 MiB uploads read by lighttpd (HTTP/1.1 and HTTP/2)" {
	upload_case 1.2
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

# Inside the private root: one Mbed TLS per process, the root's Debian 13 3.6 build (the shim links
# none and uses the program's), and every other library from the root, none from the host.
@test "private root: one Mbed TLS 3.6 in each program, every library from Debian 13" {
	local prog
	start_lighttpd 1.3 LD_DEBUG=libs LD_DEBUG_OUTPUT="$D/ld.lighttpd"
	stop_lighttpd
	LD_PRELOAD="$SHIM" LD_DEBUG=libs LD_DEBUG_OUTPUT="$D/ld.micropython" \
		"$RA/bin/micropython" -c 'import tls'
	LD_PRELOAD="$SHIM" LD_DEBUG=libs LD_DEBUG_OUTPUT="$D/ld.nngcat" "$RA/bin/nngcat" --version >/dev/null
	# (its usage message: every library loaded, nothing else done)
	LD_PRELOAD="$SHIM" LD_DEBUG=libs LD_DEBUG_OUTPUT="$D/ld.git-client" "$RA/bin/git-client" 2>/dev/null || true
	local want
	want=$(sha256sum <"$RA/root/usr/lib/x86_64-linux-gnu/libmbedtls.so.21" | cut -d' ' -f1)
	for prog in lighttpd micropython nngcat git-client; do
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

# mod_mbedtls cuts its writes to mbedtls_ssl_get_max_out_record_payload(), 16 383 in TLS 1.3 with
# Mbed TLS: each 16 KiB it reads from a file went out as a 16 383-byte and a 1-byte record. With TX
# in the kernel the shim answers 16 384 (a whole kernel record), so the file goes out in whole
# records: no 1-byte sendto at all (strace on lighttpd during a 1 MiB download).
@test "lighttpd TLS 1.3 with TX in the kernel: 16 KiB file reads go out as whole records, no 1-byte record" {
	start_lighttpd 1.3
	strace -f -qq -e trace=sendto,write -o "$D/strace" -p "$LIGHTTPD_PID" &
	local st=$!
	sleep 1 # attached
	"${NS[@]}" "${CURL[@]}" --fail --http1.1 -o "$D/mid" "https://127.0.0.1:$PORT/mid"
	kill -INT "$st"
	wait "$st" || true
	stop_lighttpd
	same_as "$D/mid" mid
	local full ones
	full=$(grep -c '= 16384$' "$D/strace" || true)
	ones=$(grep -Ec '^[0-9]+ +(sendto|write)\(.*= 1$' "$D/strace" || true)
	figures "1 MiB: $full writes of 16384 bytes, $ones of 1 byte"
	if [ "$KTLS_EXPECT" = kernel ]; then
		[ "$ones" -eq 0 ] && [ "$full" -ge 63 ]
	else
		# Mbed TLS's own records: the answer is Mbed TLS's, unchanged.
		[ "$full" -eq 0 ]
	fi
}
