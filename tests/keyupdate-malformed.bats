#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# Malformed TLS 1.3 KeyUpdates received under kernel RX must end the connection with the fatal
# alert RFC 8446 asks for (4.6.3, 5.1, 6): a body that is not one byte -> decode_error, a request
# value above 1 -> illegal_parameter, a KeyUpdate that is not the last message of its record, or
# that a record boundary cuts -> unexpected_message; and the app's mbedtls_ssl_read returns the
# matching Mbed TLS error. The records must be encrypted, so the peer is build/tests/raw-handshake
# (tests/api/raw-handshake.c): an Mbed TLS server that installs kTLS on its own socket with the
# shim's API, sends the handshake records it is given, and prints what comes back. The client is
# the stand-in mbed-client with the shim preloaded; its RX must be in the kernel.
# A valid KeyUpdate is the control: the client rekeys RX on a kernel with TLS 1.3 rekey (6.14+),
# and fails as Mbed TLS does (UNEXPECTED_MESSAGE, no alert) on one without.
# Inside tools/ktls-vm with KTLS_EXPECT=kernel; on the host (KTLS_EXPECT=user) every case skips.

load lib

setup_file() {
	export KTLS_EXPECT=${KTLS_EXPECT:-user}
	export APP_TIMEOUT=${KU_TIMEOUT:-20}
	export RAW=$ROOT/build/tests/raw-handshake
	[ -x "$RAW" ] || { echo "# no $RAW (make build/tests/raw-handshake)" >&3; return 1; }
	# The expectation must match the kernel, and whether it rekeys decides the valid cases.
	local probe
	probe=$("$ROOT/build/tools/ktls-probe" --json) || true
	if [ "$KTLS_EXPECT" = kernel ]; then
		[[ $probe == *'"ulp":true'* ]] || { echo "# KTLS_EXPECT=kernel, but: $probe" >&3; return 1; }
	else
		[[ $probe != *'"ulp":true'* ]] ||
			{ echo "# this kernel has kTLS: KTLS_EXPECT=kernel" >&3; return 1; }
	fi
	case $probe in
	*'"rekey":true'*) export REKEY=yes ;;
	*) export REKEY=no ;;
	esac
}

setup() {
	[ "$KTLS_EXPECT" = kernel ] || skip "needs a kTLS kernel (the peer sends through kTLS)"
}

teardown() { lib_teardown; }

# raw_case [CLIENT ARGS...] -- PEER ARGS...: raw-handshake with PEER ARGS (after 1000 bytes of
# data), the shimmed mbed-client reading everything with CLIENT ARGS. Sets status/output (the
# client's), PEER_STATUS, PEER_REPLY (the peer's lines after what it sent, joined by '|'), GOT
# (bytes the client received), SHIM_LOG, and d_rekey (TlsRxRekeyOk delta).
raw_case() {
	local cargs=() dir=$BATS_TEST_TMPDIR
	while [ "$1" != -- ]; do cargs+=("$1"); shift; done
	shift
	local out=$dir/peer.out rekey0 i line
	SHIM_LOG=$dir/shim.log
	rm -f "$SHIM_LOG" "$dir/got"
	: >"$out"
	rekey0=$(tls_stat TlsRxRekeyOk)
	local tx0 rx0
	tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw)
	timeout "$APP_TIMEOUT" "$RAW" --port 0 --cert "$CERTS" --data 1000 --timeout 10 "$@" \
		>"$out" 2>"$dir/peer.err" &
	PEER_PID=$!
	_BG_PIDS+=("$PEER_PID")
	PORT=
	for ((i = 0; i < 400; i++)); do
		while IFS= read -r line; do
			[[ $line =~ ^PORT\ ([0-9]+)$ ]] && PORT=${BASH_REMATCH[1]}
		done <"$out"
		[ -n "$PORT" ] && break
		kill -0 "$PEER_PID" 2>/dev/null || break
		sleep 0.025
	done
	if [ -z "$PORT" ]; then
		echo "# raw-handshake $* did not start:"
		sed 's/^/#   /' "$dir/peer.err"
		return 1
	fi
	APP_PRELOAD=$(shim_preload) || return 1
	SHIM_ENV="KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$SHIM_LOG" \
		run_client --tls 1.3 --recv-file "$dir/got" "${cargs[@]}"
	# shellcheck disable=SC2034 # lib.bash's app reads it
	APP_PRELOAD=
	PEER_STATUS=0
	wait "$PEER_PID" || PEER_STATUS=$?
	PEER_REPLY=$(sed -n '/^SENT /,$p' "$out" | grep -v '^SENT ' | paste -sd '|')
	GOT=$(stat -c %s "$dir/got" 2>/dev/null || echo 0)
	d_rekey=$(($(tls_stat TlsRxRekeyOk) - rekey0))
	echo "# client exit $status: $output"
	echo "# peer exit $PEER_STATUS: $(paste -sd '|' "$out") $(paste -sd '|' "$dir/peer.err")"
	echo "# shim: $(paste -sd '|' "$SHIM_LOG" 2>/dev/null)"
	# Both ends were in the kernel, and the client read the data before the record.
	[ "$PEER_STATUS" -eq 0 ]
	grep -q '^KTLS TLSv1.3 ' "$out"
	grep -q 'role=client version=TLSv1.3 .* tx=kernel rx=kernel' "$SHIM_LOG"
	# The kernel itself counted both ends' TX and RX (the peer's and the shimmed client's).
	[ $(($(tls_stat TlsTxSw) - tx0)) -eq 2 ]
	[ $(($(tls_stat TlsRxSw) - rx0)) -eq 2 ]
	[ "$GOT" -eq 1000 ]
}

# expect_fatal CODE ALERT: the client failed with Mbed TLS error CODE (e.g. 7300) while reading,
# and the peer received exactly one record, the fatal alert ALERT (hex description), then the end
# of the connection (a reset when the client closed with records unread), not a timeout.
expect_fatal() {
	local code=$1 alert=$2
	[ "$status" -eq 1 ]
	[[ $output == *"ERROR conn=0 down: -0x$code "* ]]
	[[ $PEER_REPLY =~ ^RECV\ type=21\ data=02$alert\|(EOF|ERR\ 104|ERR\ 32)$ ]] ||
		{ echo "# expected the peer to get alert 2/0x$alert, then EOF; got '$PEER_REPLY'"; return 1; }
	[ "$d_rekey" -eq 0 ]
}

# expect_no_rekey_kernel: the valid KeyUpdate on a kernel without rekey: the error Mbed TLS itself
# gives for a KeyUpdate (UNEXPECTED_MESSAGE), no alert (Mbed TLS sends none), and the shim says why.
expect_no_rekey_kernel() {
	[ "$status" -eq 1 ]
	[[ $output == *"ERROR conn=0 down: -0x7700 "* ]]
	grep -q 'KeyUpdate received; the kernel cannot rekey' "$SHIM_LOG"
	[ "$PEER_REPLY" = EOF ]
}

# expect_valid: a valid KeyUpdate (update_not_requested) as the last thing before the peer's
# close: with rekey the client rekeyed RX, answered nothing and read on to the EOF; without, the
# error Mbed TLS gives.
expect_valid() {
	if [ "$REKEY" = yes ]; then
		[ "$status" -eq 0 ]
		[[ $output == *"CONN 0 version=TLSv1.3 "*" down=1000 "*" close=eof "* ]]
		[ "$PEER_REPLY" = EOF ] # nothing back: no alert, no KeyUpdate
		[ "$d_rekey" -eq 1 ]
	else
		expect_no_rekey_kernel
	fi
}

@test "valid KeyUpdate (update_not_requested), then close: RX rekeyed (6.14+) or Mbed TLS's error" {
	raw_case -- --send 1800000100 --shut
	expect_valid
	# Read 2 bytes at a time, the message comes in pieces of one record.
	raw_case --chunk 2 -- --send 1800000100 --shut
	expect_valid
	# After another message in the same record (a ticket, which the client drops).
	raw_case -- --send 0400000100:1800000100 --shut
	expect_valid
}

@test "valid KeyUpdate (update_requested), then close: RX rekeyed and our KeyUpdate sent (6.14+)" {
	raw_case -- --send 1800000101 --shut
	if [ "$REKEY" = yes ]; then
		[ "$status" -eq 0 ]
		[[ $output == *" down=1000 "*" close=eof "* ]]
		# The client's answer is KeyUpdate(update_not_requested); the peer's kernel then waits for
		# a next key the peer does not install (EKEYEXPIRED).
		[ "$PEER_REPLY" = "RECV type=22 data=1800000100|ERR 127" ]
		[ "$d_rekey" -eq 1 ]
	else
		expect_no_rekey_kernel
	fi
}

@test "KeyUpdate with a body of 2 or 0 bytes: decode_error, DECODE_ERROR" {
	raw_case -- --send 180000020000
	expect_fatal 7300 32
	raw_case -- --send 18000000
	expect_fatal 7300 32
}

@test "KeyUpdate request value 2 or 255: illegal_parameter, ILLEGAL_PARAMETER" {
	raw_case -- --send 1800000102
	expect_fatal 6600 2f
	raw_case -- --send 18000001ff
	expect_fatal 6600 2f
}

@test "KeyUpdate not the last message of its record: unexpected_message, UNEXPECTED_MESSAGE" {
	raw_case -- --send 1800000100:0400000100 # then a (short) NewSessionTicket
	expect_fatal 7700 0a
	raw_case -- --send 1800000100:1800000100 # two KeyUpdates
	expect_fatal 7700 0a
	raw_case -- --send 1800000100:00 # one stray byte
	expect_fatal 7700 0a
}

@test "KeyUpdate not the last message of its record, app reads 5 bytes at a time: the same" {
	# The first recvmsg ends exactly after the KeyUpdate although its record goes on.
	raw_case --chunk 5 -- --send 1800000100:0400000100
	expect_fatal 7700 0a
}

@test "KeyUpdate cut by a record boundary: unexpected_message, UNEXPECTED_MESSAGE" {
	raw_case -- --send 180000 --send 0100
	expect_fatal 7700 0a
}
