#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# TLS 1.3 zero-copy receive: the shim sets TLS_RX_EXPECT_NO_PAD on a TLS 1.3 RX it hands to the
# kernel where its self-test proved the kernel still gives padded records back exactly
# (KTLS_SHIM_RX_NO_PAD=0 turns it off). The peer is OpenSSL's s_client padding every record to a
# multiple of 1000 bytes (-record_padding): with the option set, the kernel decrypts each padded
# record into the reader's buffer, finds the padding and decrypts it again into its own, counting
# TlsRxNoPadViolation. So the counter proves the option is set, and the bytes prove the retry
# loses nothing. Linux 6.1 (6.1.176 here) hands the content type and padding of such a record on as
# data: there the self-test must keep the option off. Inside tools/ktls-vm with
# KTLS_EXPECT=kernel (latest and 6.1); on the host (KTLS_EXPECT=user) the same cases prove the
# fallback reads padded records byte-exact.

load lib

setup_file() {
	export KTLS_EXPECT=${KTLS_EXPECT:-user}
	# The option is only set where the self-test vouched for it (tests/lib.bash turns it off).
	export KTLS_SHIM_SELFTEST=1
	if [ "$KTLS_EXPECT" = kernel ]; then
		"$ROOT/build/tools/ktls-probe" >/dev/null
	else
		! "$ROOT/build/tools/ktls-probe" >/dev/null
	fi
}

setup() {
	[ "$TLS_NEWEST" = 1.3 ] || skip "the apps are built on Mbed TLS 2.28, which has no TLS 1.3"
	head -c 4000000 /dev/urandom >"$BATS_TEST_TMPDIR/data"
}

teardown() { lib_teardown; }

# The kernel whose zero-copy receive delivers padded records wrong.
no_pad_broken() { [[ $(uname -r) == 6.1.* ]]; }

# padded_upload PRELOAD: the shimmed server (PRELOAD first, then the shim; $SHIM_ENV) receives
# 4 MB from s_client padding each record, reading 64 KiB at a time (room for a whole record);
# sets d_rx and d_viol (tls_stat deltas) and checks the bytes and the server's exit. The shim's
# log is $BATS_TEST_TMPDIR/shim.log.
padded_upload() {
	local dir=$BATS_TEST_TMPDIR rx0 viol0
	rx0=$(tls_stat TlsRxSw) viol0=$(tls_stat TlsRxNoPadViolation)
	APP_PRELOAD=$1$(shim_preload)
	local SHIM_ENV="KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$dir/shim.log ${SHIM_ENV:-}"
	start_server --serve 1 --tls 1.3 --chunk 65536 --recv-file "$dir/got"
	APP_PRELOAD=
	timeout "$APP_TIMEOUT" openssl s_client -quiet -no_ign_eof -nocommands -tls1_3 \
		-record_padding 1000 -connect "127.0.0.1:$PORT" -CAfile "$CERTS/ca.crt" \
		-verify_return_error <"$dir/data" >/dev/null 2>"$dir/s_client.err"
	stop_server
	cmp "$dir/data" "$dir/got"
	d_rx=$(($(tls_stat TlsRxSw) - rx0)) d_viol=$(($(tls_stat TlsRxNoPadViolation) - viol0))
	echo "# TlsRxSw +$d_rx, TlsRxNoPadViolation +$d_viol"
}

# RX contexts per run in the kernel: the self-test's and the connection's.
rx_contexts() { [ "$KTLS_EXPECT" = kernel ] && echo 2 || echo 0; }

@test "TLS 1.3 zero-copy receive: a padding peer's records arrive byte-exact, each padded one decrypted again (TlsRxNoPadViolation)" {
	padded_upload ''
	[ "$d_rx" -eq "$(rx_contexts)" ]
	if [ "$KTLS_EXPECT" = user ]; then
		[ "$d_viol" -eq 0 ]
	elif no_pad_broken; then
		# Only the self-test's padded record; the connection without the option.
		[ "$d_viol" -eq 1 ]
		grep -q 'RX with TLS_RX_EXPECT_NO_PAD hands a padded record on wrong' "$BATS_TEST_TMPDIR/shim.log"
	else
		# About 4 MB in records of at most 16 KiB: hundreds padded, each retried.
		[ "$d_viol" -ge 200 ]
		! grep -q 'zero-copy receive stays off' "$BATS_TEST_TMPDIR/shim.log"
	fi
}

@test "KTLS_SHIM_RX_NO_PAD=0: the kernel receives the padding peer's records without expecting no padding" {
	SHIM_ENV=KTLS_SHIM_RX_NO_PAD=0 padded_upload ''
	[ "$d_viol" -eq 0 ]
	[ "$d_rx" -eq "$(rx_contexts)" ]
}

@test "a kernel without TLS_RX_EXPECT_NO_PAD (ENOPROTOOPT, before 6.0): RX still in the kernel, bytes exact" {
	SHIM_ENV="KTLS_TEST_REFUSE=nopad" padded_upload "$ROOT/build/tests/librefuse-sockopt.so:"
	[ "$d_viol" -eq 0 ]
	[ "$d_rx" -eq "$(rx_contexts)" ]
}
