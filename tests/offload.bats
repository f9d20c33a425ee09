#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# The offload core, end to end, with the stand-in apps. The same cases run twice (tools/run-tests):
# inside tools/ktls-vm with KTLS_EXPECT=kernel, where /proc/net/tls_stat must show the kernel took
# TX and RX on every shimmed endpoint, and on the host (no kTLS) with KTLS_EXPECT=user, where every
# case must pass unchanged through the fallback and the shim must say why it stayed in user space.
# KTLS_TEST_QUICK=1 shrinks the transfers (the sanitizer run). APPS=build/apps228 runs it with the
# apps built on Mbed TLS 2.28 (the 2.28 adapter): TLS 1.2 only, the TLS 1.3 cases skipped. Cases
# tagged slow (scale, and the foreign peers tests/apps.bats also meets) run in make test only: make
# check leaves them out.

load lib

setup_file() {
	export KTLS_EXPECT=${KTLS_EXPECT:-user}
	export BIG=64M
	[ -z "${KTLS_TEST_QUICK:-}" ] || BIG=1M
	# The expectation must match what the kernel really can do, or the suite proves nothing.
	if [ "$KTLS_EXPECT" = kernel ]; then
		"$ROOT/build/tools/ktls-probe" >/dev/null
	else
		! "$ROOT/build/tools/ktls-probe" >/dev/null
	fi
}

teardown() { lib_teardown; }

needs_tls13() {
	[ "$TLS_NEWEST" = 1.3 ] || skip "the apps are built on Mbed TLS 2.28, which has no TLS 1.3"
}

# The newest version's AES-128-GCM suite, for the cases about the shim rather than the suite.
if [ "$TLS_NEWEST" = 1.3 ]; then
	GCM=(--tls 1.3 --suite TLS1-3-AES-128-GCM-SHA256)
else
	GCM=(--tls 1.2 --suite TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256)
fi

# run_pair WHERE ARGS...: the stand-in server and client with ARGS each (plus $SERVER_ARGS and
# $CLIENT_ARGS); WHERE says which ends get the shim (with $SHIM_ENV): both, server, client or
# none. REFUSE=ulp|tx|rx makes that setsockopt fail, CORRUPT=tx|rx makes the kernel's records of
# that direction wrong, ULP_ENOMEM=N fails a process's Nth TCP_ULP with ENOMEM (tests/fault). Sets d_tx d_rx d_err (tls_stat deltas); the shim's lines are
# in $BATS_TEST_TMPDIR/shim.log.
run_pair() {
	local where=$1 preload log=$BATS_TEST_TMPDIR/shim.log
	shift
	preload=$(shim_preload)
	[ -z "${REFUSE:-}${CORRUPT:-}${ULP_ENOMEM:-}" ] || preload="${preload%"$SHIM"}$ROOT/build/tests/librefuse-sockopt.so:$SHIM"
	local tx0 rx0 err0
	tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw) err0=$(tls_stat TlsDecryptError)
	rm -f "$log"
	local SHIM_ENV="KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$log KTLS_TEST_REFUSE=${REFUSE:-}
		KTLS_TEST_CORRUPT=${CORRUPT:-} KTLS_TEST_ULP_ENOMEM=${ULP_ENOMEM:-} ${SHIM_ENV:-}"
	APP_PRELOAD=
	case $where in both | server) APP_PRELOAD=$preload ;; esac
	# shellcheck disable=SC2086 # word lists
	start_server --serve "${SERVE:-1}" "$@" ${SERVER_ARGS:-}
	APP_PRELOAD=
	case $where in both | client) APP_PRELOAD=$preload ;; esac
	# shellcheck disable=SC2086
	run_client "$@" ${CLIENT_ARGS:-}
	APP_PRELOAD=
	[ "$CLIENT_STATUS" -eq 0 ] || { echo "# client exit $CLIENT_STATUS:"; sed 's/^/#   /' "$CLIENT_LOG"; }
	stop_server
	d_tx=$(($(tls_stat TlsTxSw) - tx0)) d_rx=$(($(tls_stat TlsRxSw) - rx0))
	d_err=$(($(tls_stat TlsDecryptError) - err0))
	[ "$CLIENT_STATUS" -eq 0 ]
}

# expect_offload N: N shimmed endpoint connections moved TX and RX to the kernel (kTLS kernel),
# or none did and each said the kernel has no kTLS (host).
expect_offload() {
	local n=$1
	[ "$d_err" -eq 0 ]
	if [ "$KTLS_EXPECT" = kernel ]; then
		if [ "$d_tx" -ne "$n" ] || [ "$d_rx" -ne "$n" ]; then
			echo "# expected $n kernel TX and RX, got TlsTxSw +$d_tx TlsRxSw +$d_rx"
			sed 's/^/#   /' "$BATS_TEST_TMPDIR/shim.log" 2>/dev/null
			return 1
		fi
		[ "$(grep -c 'tx=kernel rx=kernel' "$BATS_TEST_TMPDIR/shim.log")" -eq "$n" ]
	else
		[ "$d_tx" -eq 0 ]
		[ "$d_rx" -eq 0 ]
		[ "$n" -eq 0 ] || grep -q 'tx=user(kernel has no kTLS) rx=user(kernel has no kTLS)' "$BATS_TEST_TMPDIR/shim.log"
	fi
}

# expect_user N WHY [HOST_WHY]: N connections logged with both directions in user space for
# reason WHY (HOST_WHY on a kernel without kTLS, default: that), and the counters did not move.
expect_user() {
	[ "$d_tx" -eq 0 ]
	[ "$d_rx" -eq 0 ]
	[ "$d_err" -eq 0 ]
	local why=$2
	[ "$KTLS_EXPECT" = kernel ] || why=${3:-kernel has no kTLS}
	[ "$(grep -cF "tx=user($why) rx=user($why)" "$BATS_TEST_TMPDIR/shim.log")" -eq "$1" ]
}

# expect_dirs N TX RX [ST ERR]: N shimmed connections logged tx=TX rx=RX ("kernel" or
# "user(why)"); TlsTxSw and TlsRxSw moved for the kernel-owned directions plus ST contexts of the
# shim's self-test, TlsDecryptError by ERR (default 0: a self-test that saw a wrong record counts
# one there).
expect_dirs() {
	local n=$1 tx=$2 rx=$3 st=${4:-0} err=${5:-0}
	local want_tx=$(($([ "$tx" = kernel ] && echo "$n" || echo 0) + st))
	local want_rx=$(($([ "$rx" = kernel ] && echo "$n" || echo 0) + st))
	if [ "$d_tx" -ne "$want_tx" ] || [ "$d_rx" -ne "$want_rx" ] || [ "$d_err" -ne "$err" ]; then
		echo "# expected TlsTxSw +$want_tx TlsRxSw +$want_rx TlsDecryptError +$err, got +$d_tx +$d_rx +$d_err"
		sed 's/^/#   /' "$BATS_TEST_TMPDIR/shim.log" 2>/dev/null
		return 1
	fi
	[ "$(grep -cF "tx=$tx rx=$rx" "$BATS_TEST_TMPDIR/shim.log")" -eq "$n" ]
}

# suite_outcome SUITE: what this kernel does with SUITE, as "TX|RX|ST|ERR" for expect_dirs, per
# process with one connection (the self-test installs on its own pair: ST contexts, ERR decrypt
# errors). 5.10 (tools/ktls-vm --kernel 5.10) has no ChaCha20-Poly1305 in kTLS (nothing installs),
# and its TLS 1.3 AES-CCM produces wrong records: the self-test's RX sees a bad record.
suite_outcome() {
	if [ "$KTLS_EXPECT" != kernel ]; then
		echo "user(kernel has no kTLS)|user(kernel has no kTLS)|0|0"
		return
	fi
	case $(uname -r),$1 in
	5.10.*,*CHACHA20*) echo "user(kernel refused TLS_TX)|user(kernel refused TLS_RX)|0|0" ;;
	5.10.*,TLS1-3-AES-128-CCM-*) echo "user(kernel self-test failed)|user(kernel self-test failed)|1|1" ;;
	*) echo "kernel|kernel|1|0" ;;
	esac
}

# Every placement of the shim for one suite, with the kernel self-test on: both ends, server only,
# client only; byte-exact (the apps check the stream) whether the kernel carries the records or the
# shim kept them in Mbed TLS.
matrix() {
	local tls=$1 suite=$2 where n tx rx st err
	IFS='|' read -r tx rx st err <<<"$(suite_outcome "$suite")"
	for where in both server client; do
		n=$([ "$where" = both ] && echo 2 || echo 1)
		SHIM_ENV=KTLS_SHIM_SELFTEST=1 run_pair "$where" --tls "$tls" --suite "$suite" --up "$BIG" --down "$BIG"
		grep -q "suite=$suite" "$CLIENT_LOG"
		expect_dirs "$n" "$tx" "$rx" $((n * st)) $((n * err))
	done
}

@test "TLS 1.3 AES-128-GCM: shim on both, server, client" { needs_tls13; matrix 1.3 TLS1-3-AES-128-GCM-SHA256; }
@test "TLS 1.3 AES-256-GCM: shim on both, server, client" { needs_tls13; matrix 1.3 TLS1-3-AES-256-GCM-SHA384; }
@test "TLS 1.3 CHACHA20-POLY1305: shim on both, server, client" { needs_tls13; matrix 1.3 TLS1-3-CHACHA20-POLY1305-SHA256; }
@test "TLS 1.3 AES-128-CCM: shim on both, server, client" { needs_tls13; matrix 1.3 TLS1-3-AES-128-CCM-SHA256; }
@test "TLS 1.2 AES-128-GCM: shim on both, server, client" { matrix 1.2 TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256; }
@test "TLS 1.2 AES-256-GCM: shim on both, server, client" { matrix 1.2 TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384; }
@test "TLS 1.2 CHACHA20-POLY1305: shim on both, server, client" { matrix 1.2 TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256; }
@test "TLS 1.2 AES-128-CCM: shim on both, server, client" { matrix 1.2 TLS-ECDHE-ECDSA-WITH-AES-128-CCM; }

@test "default suites (Mbed TLS's first choice): offloaded, or a clean fallback with the reason" {
	local tls suite tx rx st err
	for tls in $TLS_VERSIONS; do
		SHIM_ENV=KTLS_SHIM_SELFTEST=1 run_pair both --tls "$tls" --up 1M --down 1M
		suite=$(sed -n 's/^CONN 0 .* suite=\([^ ]*\) .*/\1/p' "$CLIENT_LOG")
		# 5.10 has no ChaCha20-Poly1305 in kTLS: make sure that is what was tried there.
		case $KTLS_EXPECT,$(uname -r) in kernel,5.10.*) [[ $suite == *CHACHA20* ]] ;; esac
		IFS='|' read -r tx rx st err <<<"$(suite_outcome "$suite")"
		expect_dirs 2 "$tx" "$rx" $((2 * st)) $((2 * err))
	done
}

@test "TLS 1.3 tickets 0, 1, 3 and resumption" {
	needs_tls13
	for n in 0 1 3; do
		SERVER_ARGS="--tickets $n" CLIENT_ARGS=--resume SERVE=2 run_pair both --tls 1.3 --up 1M --down 1M
		expect_offload 4
		if [ "$n" -gt 0 ]; then
			grep -q "RESUMED yes" "$CLIENT_LOG"
		fi
	done
}

@test "TLS 1.2 session-ticket resumption" {
	SERVER_ARGS="--tickets 1" CLIENT_ARGS=--resume SERVE=2 run_pair both --tls 1.2 --up 1M --down 1M
	grep -q "RESUMED yes" "$CLIENT_LOG"
	expect_offload 4
}

@test "non-blocking sockets at both ends" {
	for tls in $TLS_VERSIONS; do
		run_pair both --tls "$tls" --nonblock --up 8M --down 8M
		expect_offload 2
	done
}

@test "client certificates and an 8-deep certificate chain" {
	for tls in $TLS_VERSIONS; do
		run_pair both --tls "$tls" --client-cert --chain 8 --up 1M --down 1M
		expect_offload 2
	done
}

@test "100-byte writes" {
	run_pair both --tls "$TLS_NEWEST" --chunk 100 --up 200K --down 200K
	expect_offload 2
}

@test "TLS 1.3 HelloRetryRequest" {
	needs_tls13
	run_pair both --tls 1.3 --hrr --up 1M --down 1M
	expect_offload 2
}

@test "hand-off after data exchanged in user space" {
	for tls in $TLS_VERSIONS; do
		SERVER_ARGS="--tickets 2" run_pair both --tls "$tls" --pre-data 50000 --up 1M --down 1M
		expect_offload 2
	done
}

# bats test_tags=slow
@test "100 sequential connections on one server context" {
	CLIENT_ARGS="--connections 100" SERVE=100 run_pair both --tls "$TLS_NEWEST" --up 16K --down 16K
	expect_offload 200
}

# bats test_tags=slow
@test "32 concurrent connections" {
	SERVER_ARGS=--threads CLIENT_ARGS="--parallel 32" SERVE=32 run_pair both --up 256K --down 256K
	expect_offload 64
}

@test "the app's own key log still gets every secret" {
	local dir=$BATS_TEST_TMPDIR
	if [ "$TLS_NEWEST" = 1.3 ]; then
		SERVER_ARGS="--keylog $dir/server.keys" CLIENT_ARGS="--keylog $dir/client.keys" \
			run_pair both --tls 1.3 --up 64K --down 64K
		expect_offload 2
		for side in server client; do
			for label in CLIENT_HANDSHAKE_TRAFFIC_SECRET SERVER_HANDSHAKE_TRAFFIC_SECRET \
				CLIENT_TRAFFIC_SECRET_0 SERVER_TRAFFIC_SECRET_0; do
				[ "$(grep -c "^$label " "$dir/$side.keys")" -eq 1 ]
			done
		done
	fi
	# Both ends' key logs hold the same one TLS 1.2 master secret. The 2.28 apps set both config
	# callbacks after mbedtls_ssl_setup: the shim chains them as 2.28 calls them (the older one,
	# a comment line here, first; each with the app's p).
	SERVER_ARGS="--keylog $dir/server12.keys" CLIENT_ARGS="--keylog $dir/client12.keys" \
		run_pair both --tls 1.2 --up 64K --down 64K
	expect_offload 2
	[ "$(grep -c '^CLIENT_RANDOM ' "$dir/server12.keys")" -eq 1 ]
	cmp "$dir/server12.keys" "$dir/client12.keys"
	if [ "$TLS_NEWEST" = 1.2 ]; then
		[ "$(wc -l <"$dir/server12.keys")" -eq 2 ]
		[ "$(sed -n '1s/^# MASTER_SECRET //p' "$dir/server12.keys")" = \
			"$(sed -n '2s/^CLIENT_RANDOM [0-9a-f]* //p' "$dir/server12.keys")" ]
	fi
}

@test "read timeouts are honoured after the hand-off" {
	SERVER_ARGS="--delay 700" CLIENT_ARGS="--read-timeout 200" \
		run_pair both --tls "$TLS_NEWEST" --down 64K
	expect_offload 2
	grep -Eq 'timeouts=[1-9]' "$CLIENT_LOG"
}

@test "fallback: a suite the kernel cannot carry stays in user space" {
	local suite
	for suite in TLS1-3-AES-128-CCM-8-SHA256 TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8 \
		TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256; do
		[[ $suite != TLS1-3-* || $TLS_NEWEST = 1.3 ]] || continue
		run_pair both --suite "$suite" --up 1M --down 1M
		expect_user 2 "suite not supported by kTLS" "suite not supported by kTLS"
	done
}

@test "fallback: TCP_ULP refused" {
	REFUSE=ulp run_pair both --tls "$TLS_NEWEST" --up 1M --down 1M
	[ "$d_tx" -eq 0 ]
	[ "$d_rx" -eq 0 ]
	[ "$(grep -c 'tx=user(kernel has no kTLS) rx=user(kernel has no kTLS)' "$BATS_TEST_TMPDIR/shim.log")" -eq 2 ]
}

@test "fallback: TLS_RX refused keeps TX in the kernel, TLS_TX refused keeps RX" {
	for dir in rx tx; do
		REFUSE=$dir run_pair both "${GCM[@]}" --up 4M --down 4M
		[ "$d_err" -eq 0 ]
		if [ "$KTLS_EXPECT" = kernel ]; then
			if [ "$dir" = rx ]; then
				[ "$d_tx" -eq 2 ]
				[ "$d_rx" -eq 0 ]
				[ "$(grep -c 'tx=kernel rx=user(kernel refused TLS_RX)' "$BATS_TEST_TMPDIR/shim.log")" -eq 2 ]
			else
				[ "$d_tx" -eq 0 ]
				[ "$d_rx" -eq 2 ]
				[ "$(grep -c 'tx=user(kernel refused TLS_TX) rx=kernel' "$BATS_TEST_TMPDIR/shim.log")" -eq 2 ]
			fi
		else
			expect_user 2 "(not used)"
		fi
	done
}

@test "self-test: a kernel whose TX (then RX) records are wrong keeps that direction in Mbed TLS" {
	local dir
	for dir in tx rx; do
		SHIM_ENV=KTLS_SHIM_SELFTEST=1 CORRUPT=$dir CLIENT_ARGS="--connections 3" SERVE=3 \
			run_pair both "${GCM[@]}" --up 1M --down 1M
		if [ "$KTLS_EXPECT" = kernel ]; then
			# 3 connections, 2 processes: one self-test pair each (its RX, when wrong, counts
			# a decrypt error).
			if [ "$dir" = tx ]; then
				expect_dirs 6 "user(kernel self-test failed)" kernel 2 0
			else
				expect_dirs 6 kernel "user(kernel self-test failed)" 2 2
			fi
			# Once per process (server and client), whatever the number of connections.
			[ "$(grep -c "kernel self-test failed: TLS $TLS_NEWEST AES-128-GCM ${dir^^}:" \
				"$BATS_TEST_TMPDIR/shim.log")" -eq 2 ]
		else
			expect_user 6 "(not used)"
		fi
	done
}

@test "self-test: a transient failure is not cached: that connection stays in Mbed TLS, the next is offloaded" {
	# The server's 2nd TCP_ULP is the self-test pair's (the 1st is its connection's): ENOMEM.
	SHIM_ENV=KTLS_SHIM_SELFTEST=1 ULP_ENOMEM=2 CLIENT_ARGS="--connections 2" SERVE=2 \
		run_pair server "${GCM[@]}" --up 1M --down 1M
	if [ "$KTLS_EXPECT" = kernel ]; then
		# Connection 1: TX could not be tested, RX tested again (and passed); connection 2: both.
		# The kernel: 3 connection contexts and one self-test pair.
		[ "$(grep -cF 'tx=user(kernel self-test could not run) rx=kernel' "$BATS_TEST_TMPDIR/shim.log")" -eq 1 ]
		[ "$(grep -cF 'tx=kernel rx=kernel' "$BATS_TEST_TMPDIR/shim.log")" -eq 1 ]
		[ "$d_tx" -eq 2 ]
		[ "$d_rx" -eq 3 ]
		[ "$d_err" -eq 0 ]
	else
		expect_user 2 "(not used)"
	fi
}

@test "fallback: TLS 1.2 peer without the shim keeps working when only RX or TX is offloaded" {
	for dir in tx rx; do
		SHIM_ENV="KTLS_SHIM_DIRECTIONS=$dir" run_pair server --tls 1.2 --up 2M --down 2M
		[ "$d_err" -eq 0 ]
		if [ "$KTLS_EXPECT" = kernel ]; then
			if [ "$dir" = tx ]; then [ "$d_tx" -eq 1 ] && [ "$d_rx" -eq 0 ]; else [ "$d_tx" -eq 0 ] && [ "$d_rx" -eq 1 ]; fi
		fi
	done
}

@test "KTLS_SHIM_DISABLE=1 leaves the kernel counters alone" {
	SHIM_ENV="KTLS_SHIM_DISABLE=1" run_pair both --tls "$TLS_NEWEST" --up 1M --down 1M
	[ "$d_tx" -eq 0 ]
	[ "$d_rx" -eq 0 ]
	[ ! -s "$BATS_TEST_TMPDIR/shim.log" ]
}

# interop CASE N: a tests/lib.bash interop case with the shim on our side; N connections of ours.
# On a kTLS kernel each of them must have moved TX and RX to the kernel (a wrong key or sequence
# number would surface as the foreign peer's bad_record_mac); on the host each fell back.
interop() {
	local log=$BATS_TEST_TMPDIR/shim.log tx0 rx0 err0
	tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw) err0=$(tls_stat TlsDecryptError)
	APP_PRELOAD=$(shim_preload)
	SHIM_ENV="KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$log" "$1"
	APP_PRELOAD=
	d_tx=$(($(tls_stat TlsTxSw) - tx0)) d_rx=$(($(tls_stat TlsRxSw) - rx0))
	d_err=$(($(tls_stat TlsDecryptError) - err0))
	[ "$(wc -l <"$log")" -eq "$2" ]
	expect_offload "$2"
}

# Connections per TLS version in the OpenSSL cases, and in the GnuTLS one's echo part.
VERSIONS=$(wc -w <<<"$TLS_VERSIONS")
# bats test_tags=slow
@test "interop: our client with OpenSSL s_server, TLS 1.3 and 1.2" {
	interop interop_openssl_server $((2 * VERSIONS))
}
# bats test_tags=slow
@test "interop: OpenSSL s_client with our server, TLS 1.3 and 1.2" {
	interop interop_openssl_client $((2 * VERSIONS))
}
# bats test_tags=slow
@test "interop: GnuTLS gnutls-cli with our server and our client with gnutls-serv" {
	if [ "$KTLS_EXPECT" = kernel ]; then
		GNUTLS_DOWNLOAD=no interop interop_gnutls $((1 + VERSIONS))
	else
		interop interop_gnutls $((2 + VERSIONS))
	fi
}
