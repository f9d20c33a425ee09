#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# TLS 1.3 KeyUpdate with the shim. An OpenSSL peer (tests/peers/openssl-peer.c: libssl's own
# KeyUpdate, the same code as s_client/s_server's 'k' and 'K') echoes or checks a 64 MiB stream and
# sends KeyUpdates in the middle of it; the stand-in app has the shim.
# - On a kernel with rekey (6.14+, `tools/ktls-vm --kernel latest`): the transfer is byte-exact,
#   the peer decrypted everything, and /proc/net/tls_stat's rekey counters moved by exactly the
#   KeyUpdates each side sent.
# - Without rekey (6.1, or the host without kTLS): the app gets Mbed TLS's own error for a
#   KeyUpdate (-0x7700), the same as the app without the shim, and nothing hangs.
# KTLS_TEST_QUICK=1 shrinks the transfers.

load lib

setup_file() {
	export KTLS_EXPECT=${KTLS_EXPECT:-user}
	export BIG=64M EVERY=4M
	[ -z "${KTLS_TEST_QUICK:-}" ] || { BIG=8M EVERY=1M; }
	# What the kernel can do decides what each case expects: read it, and check it agrees with
	# what the suite was told to expect.
	local json
	json=$("$ROOT/build/tools/ktls-probe" --json) || true
	export REKEY=no
	[[ $json == *'"rekey":true'* ]] && REKEY=yes
	if [ "$KTLS_EXPECT" = kernel ]; then
		[[ $json == *'"ulp":true'* ]]
	else
		[[ $json == *'"ulp":false'* ]]
	fi
}

teardown() { lib_teardown; }

PEER=$ROOT/build/tests/openssl-peer
UNEXPECTED='-0x7700' # MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE: Mbed TLS 3.6 on any KeyUpdate

counters() {
	local k
	for k in TlsTxSw TlsRxSw TlsDecryptError TlsTxRekeyOk TlsRxRekeyOk TlsTxRekeyError TlsRxRekeyError; do
		printf '%s ' "$(tls_stat "$k")"
	done
}

# delta NAME: how far counter NAME moved since `counters` was saved in $C0.
delta() {
	local names=(TlsTxSw TlsRxSw TlsDecryptError TlsTxRekeyOk TlsRxRekeyOk TlsTxRekeyError TlsRxRekeyError)
	local before=($C0) i
	for i in "${!names[@]}"; do
		[ "${names[$i]}" = "$1" ] && { echo $(($(tls_stat "$1") - before[i])); return; }
	done
	return 1
}

# ku_run ROLE PRELOAD PEER_ARGS... : one transfer. ROLE is the stand-in app's: client (the peer is
# an echo server) or server (the peer is the client and checks the echo). Sets APP_STATUS, APP_OUT,
# PEER_STATUS and PEER_OUT.
ku_run() {
	local role=$1 preload=$2 dir=$BATS_TEST_TMPDIR
	shift 2
	local log=$dir/shim.log
	rm -f "$log"
	APP_PRELOAD=$preload
	local SHIM_ENV="KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$log ${SHIM_ENV:-}"
	PEER_STATUS=0
	if [ "$role" = client ]; then
		start_peer peer "$PEER" --server --cert "$CERTS" --tls 1.3 "$@"
		PORT=$PEER_PORT run_client --tls 1.3 --up "$BIG" --echo ${APP_ARGS:-}
		APP_STATUS=$status APP_OUT=$output
		wait_peer || PEER_STATUS=$?
	else
		start_server --serve 1 --tls 1.3 --echo ${APP_ARGS:-}
		timeout "$APP_TIMEOUT" "$PEER" --client --port "$PORT" --cert "$CERTS" --tls 1.3 \
			--bytes "$BIG" "$@" >"$dir/peer.out" 2>"$dir/peer.err" || PEER_STATUS=$?
		CLIENT_STATUS=$PEER_STATUS
		APP_STATUS=0
		stop_server || APP_STATUS=$?
		APP_OUT=$(cat "$SERVER_LOG")
	fi
	APP_PRELOAD=
	PEER_OUT=$(cat "$dir/peer.out" "$dir/peer.err" 2>/dev/null)
}

show_all() {
	echo "# app (status $APP_STATUS):"
	printf '%s\n' "$APP_OUT" | sed 's/^/#   /'
	echo "# peer (status $PEER_STATUS):"
	printf '%s\n' "$PEER_OUT" | sed 's/^/#   /'
	echo "# shim log:"
	sed 's/^/#   /' "$BATS_TEST_TMPDIR/shim.log" 2>/dev/null || true
}

# ku_case ROLE REQUEST: the peer sends a KeyUpdate after every $EVERY it writes (REQUEST=--request
# asks us to update too).
ku_case() {
	local role=$1 request=${2:-} want_tx=0
	if [ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ]; then
		C0=$(counters)
		ku_run "$role" "$(shim_preload)" --key-update-every "$EVERY" $request
		[ "$APP_STATUS" -eq 0 ] && [ "$PEER_STATUS" -eq 0 ] || { show_all; false; }
		[[ $PEER_OUT =~ OK\ bytes=([0-9]+)\ key_updates=([0-9]+) ]] || { show_all; false; }
		local sent=${BASH_REMATCH[2]}
		[ -n "$request" ] && want_tx=$sent
		echo "# peer KeyUpdates: $sent; TlsRxRekeyOk +$(delta TlsRxRekeyOk), TlsTxRekeyOk +$(delta TlsTxRekeyOk)"
		[ "$sent" -ge 8 ]
		[ "$(delta TlsRxRekeyOk)" -eq "$sent" ] && [ "$(delta TlsTxRekeyOk)" -eq "$want_tx" ] ||
			{ show_all; false; }
		[ "$(delta TlsRxRekeyError)" -eq 0 ] && [ "$(delta TlsTxRekeyError)" -eq 0 ]
		[ "$(delta TlsDecryptError)" -eq 0 ]
		[ "$(delta TlsTxSw)" -eq 1 ] && [ "$(delta TlsRxSw)" -eq 1 ]
		grep -q 'tx=kernel rx=kernel' "$BATS_TEST_TMPDIR/shim.log"
		return
	fi
	# No rekey here: whatever Mbed TLS alone does, the shim must do too.
	ku_run "$role" "" --key-update-every "$EVERY" $request
	local plain_status=$APP_STATUS plain_out=$APP_OUT
	[[ $plain_out == *"$UNEXPECTED"* ]] || { show_all; false; }
	C0=$(counters)
	ku_run "$role" "$(shim_preload)" --key-update-every "$EVERY" $request
	[ "$APP_STATUS" -eq "$plain_status" ] || { show_all; false; }
	[[ $APP_OUT == *"$UNEXPECTED"* ]] || { show_all; false; }
	[ "$PEER_STATUS" -ne 124 ] && [ "$APP_STATUS" -ne 124 ] # nobody hung
	if [ "$KTLS_EXPECT" = kernel ]; then
		grep -q 'tx=kernel rx=kernel' "$BATS_TEST_TMPDIR/shim.log"
		[ "$(delta TlsTxSw)" -eq 1 ] && [ "$(delta TlsRxSw)" -eq 1 ]
		grep -q 'KeyUpdate received; the kernel cannot rekey' "$BATS_TEST_TMPDIR/shim.log" ||
			{ show_all; false; }
	else
		[ "$(delta TlsTxSw)" -eq 0 ] && [ "$(delta TlsRxSw)" -eq 0 ]
	fi
}

@test "shim client: the OpenSSL server's KeyUpdates (k) in a $BIG echo" { ku_case client; }
@test "shim client: the OpenSSL server's KeyUpdates asking for ours (K)" { ku_case client --request; }
@test "shim server: the OpenSSL client's KeyUpdates (k) in a $BIG echo" { ku_case server; }
@test "shim server: the OpenSSL client's KeyUpdates asking for ours (K)" { ku_case server --request; }
@test "non-blocking sockets: KeyUpdates asking for ours (K), shim client and shim server" {
	APP_ARGS=--nonblock ku_case client --request
	APP_ARGS=--nonblock ku_case server --request
}

# rekey_case ROLE CHUNK: KTLS_SHIM_REKEY_RECORDS=100, the shim updates its own TX key; the OpenSSL
# peer decrypts it all (byte-exact echo). Without rekey in the kernel, the shim sends none.
rekey_case() {
	local role=$1 chunk=$2
	C0=$(counters)
	SHIM_ENV="KTLS_SHIM_REKEY_RECORDS=100 ${SHIM_ENV:-}" APP_ARGS="--chunk $chunk" \
		ku_run "$role" "$(shim_preload)" --chunk "$chunk"
	[ "$APP_STATUS" -eq 0 ] && [ "$PEER_STATUS" -eq 0 ] || { show_all; false; }
	[[ $PEER_OUT == *"OK bytes="* ]]
	local records=$(($(numfmt --from=iec "$BIG") / 16384)) updates
	updates=$(delta TlsTxRekeyOk)
	echo "# $records records of ours: TlsTxRekeyOk +$updates"
	if [ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ]; then
		# At most 100 records per key: at least records/100 updates (a few more for the
		# handshake's records and rounding; an upper bound keeps the count honest too).
		[ "$updates" -ge $((records / 100)) ] && [ "$updates" -le $((records / 100 + 2)) ] ||
			{ show_all; false; }
		[ "$(delta TlsRxRekeyOk)" -eq 0 ] && [ "$(delta TlsDecryptError)" -eq 0 ]
		grep -q ' tx=kernel ' "$BATS_TEST_TMPDIR/shim.log"
	else
		[ "$updates" -eq 0 ]
	fi
}

@test "KTLS_SHIM_REKEY_RECORDS=100, shim client, 16 KiB writes: many TX updates, OpenSSL reads all" {
	rekey_case client 16K
}
@test "KTLS_SHIM_REKEY_RECORDS=100, shim server, 1 MiB writes: many TX updates, OpenSSL reads all" {
	rekey_case server 1M
}

# One direction in the kernel: the shim follows KeyUpdates on that direction only.
@test "RX only in the kernel: KeyUpdates followed; one asking for ours fails as in Mbed TLS" {
	[ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ] ||
		skip "needs a kernel with TLS 1.3 rekey (elsewhere: the cases above)"
	C0=$(counters)
	SHIM_ENV=KTLS_SHIM_DIRECTIONS=rx ku_run client "$(shim_preload)" --key-update-every "$EVERY"
	[ "$APP_STATUS" -eq 0 ] && [ "$PEER_STATUS" -eq 0 ] || { show_all; false; }
	[[ $PEER_OUT =~ key_updates=([0-9]+) ]] && [ "$(delta TlsRxRekeyOk)" -eq "${BASH_REMATCH[1]}" ]
	grep -q 'tx=user(KTLS_SHIM_DIRECTIONS) rx=kernel' "$BATS_TEST_TMPDIR/shim.log"
	# Mbed TLS cannot send a KeyUpdate: the connection ends with its own error for one.
	SHIM_ENV=KTLS_SHIM_DIRECTIONS=rx ku_run client "$(shim_preload)" --key-update-every "$EVERY" --request
	[ "$APP_STATUS" -ne 0 ] && [[ $APP_OUT == *"$UNEXPECTED"* ]] || { show_all; false; }
	grep -q 'KeyUpdate received; the peer asks for our KeyUpdate and TX is not in the kernel' \
		"$BATS_TEST_TMPDIR/shim.log"
}

@test "TX only in the kernel: Mbed TLS meets the peer's KeyUpdate (its error); our own TX updates work" {
	local SHIM_ENV=KTLS_SHIM_DIRECTIONS=tx
	ku_run client "$(shim_preload)" --key-update-every "$EVERY"
	[ "$APP_STATUS" -ne 0 ] && [[ $APP_OUT == *"$UNEXPECTED"* ]] || { show_all; false; }
	SHIM_ENV="KTLS_SHIM_DIRECTIONS=tx" rekey_case client 16K
	[ "$KTLS_EXPECT" = user ] || grep -q 'tx=kernel rx=user(KTLS_SHIM_DIRECTIONS)' "$BATS_TEST_TMPDIR/shim.log"
}
