#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# Custom BIOs (issue 15): the stand-in apps with their own mbedtls_ssl_set_bio callbacks
# (--bio MODE, tests/apps/bio.h), the shim on both ends. A BIO whose every call is a synchronous
# send/recv (or write/read, writev/readv, sendmsg/recvmsg) on one TCP socket is proven and, in a
# kTLS kernel (KTLS_EXPECT=kernel, inside tools/ktls-vm), offloaded at both ends: /proc/net/tls_stat
# moves. Every other BIO (buffering, asynchronous, two descriptors, its own timeout) and every lying
# one (a count, bytes or a descriptor that is not the socket's) stays in Mbed TLS with a
# "custom BIO: " reason, and the counters do not move. Every connection is byte-exact either way
# (the apps check the stream). On the host (KTLS_EXPECT=user) the same cases run through the
# fallback. APPS=build/apps228 runs them with Mbed TLS 2.28 (TLS 1.2 only). The fork, fd reuse,
# TLS-inside-TLS and socket-mode cases after a custom-BIO hand-off are in tests/lifecycle.bats
# ("custom BIO: ...").

# shellcheck disable=SC2034 # lib.bash reads APP_PRELOAD
load lib

setup_file() {
	export KTLS_EXPECT=${KTLS_EXPECT:-user}
	export SIZE=4M
	[ -z "${KTLS_TEST_QUICK:-}" ] || SIZE=256K
	if [ "$KTLS_EXPECT" = kernel ]; then
		"$ROOT/build/tools/ktls-probe" >/dev/null
	else
		! "$ROOT/build/tools/ktls-probe" >/dev/null
	fi
}

teardown() { lib_teardown; }

# bio_pair MODE ARGS...: mbed-server --serve 1 and mbed-client with --bio MODE and ARGS (plus
# $SERVER_ARGS and $CLIENT_ARGS), the shim on both (with $SHIM_ENV), or with PLAIN_END=client or
# server that end plain Mbed TLS with mbedtls_net_* (--bio net). Sets d_tx d_rx d_err (tls_stat
# deltas) and SHIMMED (the shimmed apps' logs); the shim's lines are in $LOG.
bio_pair() {
	local mode=$1 tx0 rx0 err0 preload
	shift
	LOG=$BATS_TEST_TMPDIR/shim.log
	rm -f "$LOG"
	tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw) err0=$(tls_stat TlsDecryptError)
	preload=$(shim_preload)
	local SHIM_ENV="KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$LOG ${SHIM_ENV:-}"
	local smode=$mode spre=$preload cmode=$mode cpre=$preload
	case ${PLAIN_END:-} in server) smode=net spre= ;; client) cmode=net cpre= ;; esac
	APP_PRELOAD=$spre
	# shellcheck disable=SC2086 # word lists
	start_server --serve 1 --bio "$smode" "$@" ${SERVER_ARGS:-}
	APP_PRELOAD=$cpre
	# shellcheck disable=SC2086
	run_client --bio "$cmode" "$@" ${CLIENT_ARGS:-}
	APP_PRELOAD=
	[ "$CLIENT_STATUS" -eq 0 ] || { echo "# client exit $CLIENT_STATUS:"; sed 's/^/#   /' "$CLIENT_LOG"; }
	stop_server
	d_tx=$(($(tls_stat TlsTxSw) - tx0)) d_rx=$(($(tls_stat TlsRxSw) - rx0))
	d_err=$(($(tls_stat TlsDecryptError) - err0))
	SHIMMED=()
	[ "${PLAIN_END:-}" = server ] || SHIMMED+=("$SERVER_LOG")
	[ "${PLAIN_END:-}" = client ] || SHIMMED+=("$CLIENT_LOG")
	[ "$CLIENT_STATUS" -eq 0 ]
}

show_log() { sed 's/^/#   /' "$LOG" 2>/dev/null; }

# callbacks_after WHEN: the shimmed apps' callbacks were called in the handshake, and after it
# (WHEN "some") or not at all (WHEN "none": the shim did the connection's I/O itself).
callbacks_after() {
	local want='[1-9][0-9]*' f
	[ "$1" = some ] || want=0
	for f in "${SHIMMED[@]}"; do
		grep -Eq "^BIO 0 calls: handshake=[1-9][0-9]* after=$want\$" "$f" ||
			{ echo "# $f: want callbacks after the handshake: $1"; grep '^BIO' "$f"; return 1; }
	done
}

# expect_kernel: every shimmed end moved TX and RX to the kernel and its app's callbacks were not
# called after the handshake (kTLS kernel), or stayed in Mbed TLS only because the kernel has no
# kTLS (host): the BIO itself was not the reason.
expect_kernel() {
	local n=${#SHIMMED[@]}
	[ "$d_err" -eq 0 ]
	if [ "$KTLS_EXPECT" = kernel ]; then
		if [ "$d_tx" -ne "$n" ] || [ "$d_rx" -ne "$n" ] || [ "$(grep -c 'tx=kernel rx=kernel' "$LOG")" -ne "$n" ]; then
			echo "# expected $n ends in the kernel: TlsTxSw +$d_tx TlsRxSw +$d_rx"
			show_log
			return 1
		fi
		callbacks_after none
	else
		[ "$d_tx" -eq 0 ] && [ "$d_rx" -eq 0 ]
		[ "$(grep -c 'tx=user(kernel has no kTLS) rx=user(kernel has no kTLS)' "$LOG")" -eq "$n" ] || { show_log; return 1; }
		callbacks_after some
	fi
}

# expect_bio_user WORDS: both ends stayed in Mbed TLS because of their BIO, "custom BIO: " followed
# by WORDS (the BIO is judged before the kernel, so the host says it too), the kernel's counters
# did not move, and the app's callbacks went on carrying the records.
expect_bio_user() {
	local words=$1
	[ "$((d_tx + d_rx + d_err))" -eq 0 ] || { show_log; return 1; }
	if [ "$(grep -cF "tx=user(custom BIO: $words" "$LOG")" -ne 2 ] ||
		[ "$(grep -cF "rx=user(custom BIO: $words" "$LOG")" -ne 2 ]; then
		echo "# expected both ends in Mbed TLS with 'custom BIO: $words'"
		show_log
		return 1
	fi
	callbacks_after some
}

# ---- the proof's yes ----------------------------------------------------------------------------

@test "custom BIO sync (send/recv): offloaded at both ends, TLS 1.3 and 1.2" {
	for tls in $TLS_VERSIONS; do
		bio_pair sync --tls "$tls" --up "$SIZE" --down "$SIZE"
		expect_kernel
	done
}

@test "custom BIO sync at one end, plain Mbed TLS (mbedtls_net_*) at the other: offloaded, TLS 1.3 and 1.2" {
	# Both ends shimmed could agree on the same wrong sequence number; a plain peer cannot.
	for tls in $TLS_VERSIONS; do
		for plain in client server; do
			PLAIN_END=$plain bio_pair sync --tls "$tls" --up 1M --down 1M
			expect_kernel
		done
	done
}

@test "custom BIO sync-rw, sync-iov, sync-msg (write/read, writev/readv, sendmsg/recvmsg): offloaded" {
	for mode in sync-rw sync-iov sync-msg; do
		bio_pair "$mode" --tls "$TLS_NEWEST" --up 1M --down 1M
		expect_kernel
	done
}

# expect_rx_only: each end's RX in the kernel; its TX too only where the handshake showed the send
# callback answering EAGAIN with WANT_WRITE (a send hardly ever meets EAGAIN in a handshake), else
# in Mbed TLS with the unseen-answer reason (decided at the app's first call after the handshake:
# the socket may have become blocking). On the host nothing moves (the undecided TX then says
# "kernel has no kTLS").
expect_rx_only() {
	local n=${#SHIMMED[@]} unseen='tx=user(custom BIO: its socket can time out or not block'
	[ "$d_err" -eq 0 ]
	if [ "$KTLS_EXPECT" = kernel ]; then
		local tx_kernel
		tx_kernel=$(grep -c 'tx=kernel rx=kernel' "$LOG") || true
		if [ "$d_rx" -ne "$n" ] || [ "$d_tx" -ne "$tx_kernel" ] ||
			[ "$(grep -cF "$unseen" "$LOG")" -ne "$((n - tx_kernel))" ]; then
			echo "# expected RX in the kernel at $n ends: TlsTxSw +$d_tx TlsRxSw +$d_rx"
			show_log
			return 1
		fi
	else
		[ "$((d_tx + d_rx))" -eq 0 ] && [ "$(grep -c ' tx=user(' "$LOG")" -eq "$n" ] ||
			{ show_log; return 1; }
	fi
}

@test "custom BIO sync on non-blocking sockets, with a HelloRetryRequest where TLS 1.3 is: RX offloaded, TX where its answer was seen" {
	local hrr=
	[ "$TLS_NEWEST" != 1.3 ] || hrr=--hrr
	# shellcheck disable=SC2086 # no word, or one
	bio_pair sync --tls "$TLS_NEWEST" --nonblock $hrr --up 1M --down 1M
	expect_rx_only
}

@test "custom BIO sync, KTLS_SHIM_CUSTOM_BIO=0: stays in Mbed TLS (offload turned off)" {
	SHIM_ENV=KTLS_SHIM_CUSTOM_BIO=0 bio_pair sync --tls "$TLS_NEWEST" --up 1M --down 1M
	expect_bio_user 'offload turned off (KTLS_SHIM_CUSTOM_BIO=0)'
}

@test "custom BIO sync, KTLS_SHIM_CUSTOM_BIO=maybe: a config warning, the default (offload) kept" {
	SHIM_ENV=KTLS_SHIM_CUSTOM_BIO=maybe bio_pair sync --tls "$TLS_NEWEST" --up 256K --down 256K
	expect_kernel
	# The usual line on stderr (tests/controls.bats: "bad values").
	grep -q "^ktlsshim: KTLS_SHIM_CUSTOM_BIO='maybe' is not valid (expected 0 or 1); using 1$" "$CLIENT_LOG"
	grep -q "^ktlsshim: KTLS_SHIM_CUSTOM_BIO='maybe' is not valid (expected 0 or 1); using 1$" "$SERVER_LOG"
}

# ---- the proof's no: BIOs that are not one synchronous socket ------------------------------------

@test "custom BIO sync waiting up to Mbed TLS's read timeout (recv_timeout): offloaded, timeouts still counted" {
	SERVER_ARGS="--delay 700" CLIENT_ARGS="--read-timeout 200" \
		bio_pair sync --tls "$TLS_NEWEST" --down 64K
	expect_kernel
	grep -Eq 'timeouts=[1-9]' "$CLIENT_LOG"
}

@test "custom BIO own-wait (a 10 s poll of its own before each recv): stays in Mbed TLS" {
	bio_pair own-wait --tls "$TLS_NEWEST" --up 1M --down 1M
	expect_bio_user 'waits with its own timeout'
}

@test "custom BIO timeout-error (SO_RCVTIMEO, its EAGAIN an error of its own): RX stays in Mbed TLS, TX offloaded" {
	bio_pair timeout-error --tls "$TLS_NEWEST" --up 1M --down 1M
	local n=${#SHIMMED[@]} rx='rx=user(custom BIO: its socket can time out or not block'
	[ "$d_err" -eq 0 ] && [ "$d_rx" -eq 0 ]
	if [ "$KTLS_EXPECT" = kernel ]; then
		# RX asked once more at the app's first call: the socket's timeout is still set.
		[ "$(grep -cF "$rx" "$LOG")" -eq "$n" ] || { show_log; false; }
		[ "$d_tx" -eq "$n" ] && [ "$(grep -c 'tx=kernel rx=user' "$LOG")" -eq "$n" ] ||
			{ show_log; false; }
	else
		[ "$d_tx" -eq 0 ]
	fi
}

@test "custom BIO poll-first (polls for ever, then recv): offloaded; on non-blocking sockets (blocking emulated): stays in Mbed TLS" {
	bio_pair poll-first --tls "$TLS_NEWEST" --up 1M --down 1M
	expect_kernel
	bio_pair poll-first --tls "$TLS_NEWEST" --nonblock --up 1M --down 1M
	expect_bio_user 'makes its non-blocking socket block'
}

@test "custom BIO buffering (reads ahead): stays in Mbed TLS, TLS 1.3 and 1.2" {
	for tls in $TLS_VERSIONS; do
		bio_pair buffering --tls "$tls" --up 1M --down 1M
		expect_bio_user 'read ahead'
	done
}

@test "custom BIO async (other threads do the I/O): stays in Mbed TLS" {
	bio_pair async --tls "$TLS_NEWEST" --up 1M --down 1M
	expect_bio_user 'no socket call on this thread inside the BIO'
}

@test "custom BIO two-socket (each record also copied to a second socket): stays in Mbed TLS" {
	bio_pair two-socket --tls "$TLS_NEWEST" --up 1M --down 1M
	expect_bio_user 'two descriptors'
}

# ---- lying BIOs: never offloaded, the connection as without the shim -----------------------------

@test "lying BIO lie-count (one send reports a byte the socket did not take): stays in Mbed TLS" {
	for tls in $TLS_VERSIONS; do
		bio_pair lie-count --tls "$tls" --up 1M --down 1M
		expect_bio_user 'reported more bytes than the socket took'
	done
}

@test "lying BIO lie-fewer (one send reports a byte fewer than the socket took): stays in Mbed TLS" {
	bio_pair lie-fewer --tls "$TLS_NEWEST" --up 1M --down 1M
	expect_bio_user 'reported fewer bytes than the socket took'
}

@test "lying BIO lie-bytes (the wire's bytes are not the records): stays in Mbed TLS" {
	for tls in $TLS_VERSIONS; do
		bio_pair lie-bytes --tls "$tls" --up 1M --down 1M
		expect_bio_user 'bytes differ from the socket'
	done
}

@test "lying BIO switch-fd (moves to a dup of the socket mid-handshake): stays in Mbed TLS" {
	for tls in $TLS_VERSIONS; do
		bio_pair switch-fd --tls "$tls" --up 1M --down 1M
		expect_bio_user 'two descriptors'
	done
}

@test "a BIO call left by siglongjmp (an alarm timeout) or by a coroutine never resumed: the app goes on, no crash" {
	# bio-escape: the app's own BIO, Mbed TLS's net BIO (both: SIGALRM jumps out of the
	# handshake, three rounds from ever deeper frames), and a coroutine parked inside its BIO recv
	# whose stack is unmapped before another coroutine goes on. Before the shim saw the jump or the
	# switch, its BIO watch or its record of Mbed TLS calls pointed into dead frames: SIGSEGV.
	local mode preload
	preload=$(shim_preload)
	for mode in own net coro; do
		# The abandoned contexts leak by design (under ASan, not a finding).
		ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD=$preload KTLS_SHIM_LOG=info \
			run "$ROOT/build/tests/bio-escape" "$mode"
		echo "# $mode: $output"
		[ "$status" -eq 0 ]
		[[ $output == *done* ]]
	done
}
