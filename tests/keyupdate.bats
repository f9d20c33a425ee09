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
# Before its first own KeyUpdate the shim makes sure the kernel can rekey, by setting the TX key
# of a loopback socket twice, once per process: one TlsTxRekeyOk, and one TlsTxSw for the socket
# (a throw-away one; with the kernel self-test on, the self-test's own, which it counts anyway).
PROBE=1
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
		[ "$(delta TlsRxRekeyError)" -eq 0 ]
		[ "$(delta TlsTxRekeyError)" -eq 0 ]
		[ "$(delta TlsDecryptError)" -eq 0 ]
		[ "$(delta TlsTxSw)" -eq 1 ]
		[ "$(delta TlsRxSw)" -eq 1 ]
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
	[ "$PEER_STATUS" -ne 124 ]
	[ "$APP_STATUS" -ne 124 ] # nobody hung
	if [ "$KTLS_EXPECT" = kernel ]; then
		grep -q 'tx=kernel rx=kernel' "$BATS_TEST_TMPDIR/shim.log"
		[ "$(delta TlsTxSw)" -eq 1 ]
		[ "$(delta TlsRxSw)" -eq 1 ]
		grep -q 'KeyUpdate received; the kernel cannot rekey' "$BATS_TEST_TMPDIR/shim.log" ||
			{ show_all; false; }
	else
		[ "$(delta TlsTxSw)" -eq 0 ]
		[ "$(delta TlsRxSw)" -eq 0 ]
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
		ku_run "$role" "${KU_PRELOAD:-$(shim_preload)}" --chunk "$chunk"
	[ "$APP_STATUS" -eq 0 ] && [ "$PEER_STATUS" -eq 0 ] || { show_all; false; }
	[[ $PEER_OUT == *"OK bytes="* ]]
	local records=$(($(numfmt --from=iec "$BIG") / 16384)) updates
	updates=$(delta TlsTxRekeyOk)
	echo "# $records records of ours: TlsTxRekeyOk +$updates"
	if [ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ]; then
		updates=$((updates - PROBE))
		# At most 100 records per key: at least records/100 updates (a few more for the
		# handshake's records and rounding; an upper bound keeps the count honest too).
		[ "$updates" -ge $((records / 100)) ] && [ "$updates" -le $((records / 100 + 2)) ] ||
			{ show_all; false; }
		[ "$(delta TlsRxRekeyOk)" -eq 0 ]
		[ "$(delta TlsDecryptError)" -eq 0 ]
		grep -q ' tx=kernel ' "$BATS_TEST_TMPDIR/shim.log"
	else
		[ "$updates" -eq 0 ]
		# A due key that cannot be replaced is said once; the transfer goes on under it.
		[ "$KTLS_EXPECT" = user ] || [ "$(grep -c 'TX key is due for replacement .* cannot be replaced: the kernel cannot rekey' \
			"$BATS_TEST_TMPDIR/shim.log")" -eq 1 ] || { show_all; false; }
	fi
}

@test "KTLS_SHIM_REKEY_RECORDS=100, shim client, 16 KiB writes: many TX updates, OpenSSL reads all" {
	rekey_case client 16K
}
@test "KTLS_SHIM_REKEY_RECORDS=100, shim server, 1 MiB writes: many TX updates, OpenSSL reads all" {
	rekey_case server 1M
}

# With the kernel self-test on, its loopback socket also answers whether the kernel can rekey:
# the process makes no probe socket of its own. Kernel contexts: the connection's and the
# self-test's, in each direction (before, a third TX one: the probe's).
@test "self-test on: its socket answers whether the kernel can rekey; no probe socket of its own" {
	SHIM_ENV=KTLS_SHIM_SELFTEST=1 rekey_case client 16K
	local want=0
	[ "$KTLS_EXPECT" = user ] || want=2
	echo "# TlsTxSw +$(delta TlsTxSw), TlsRxSw +$(delta TlsRxSw)"
	[ "$(delta TlsTxSw)" -eq "$want" ] && [ "$(delta TlsRxSw)" -eq "$want" ] || { show_all; false; }
}

# One direction in the kernel: the shim follows KeyUpdates on that direction only.
@test "RX only in the kernel: KeyUpdates followed; one asking for ours fails as in Mbed TLS" {
	[ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ] ||
		skip "needs a kernel with TLS 1.3 rekey (elsewhere: the cases above)"
	C0=$(counters)
	SHIM_ENV=KTLS_SHIM_DIRECTIONS=rx ku_run client "$(shim_preload)" --key-update-every "$EVERY"
	[ "$APP_STATUS" -eq 0 ] && [ "$PEER_STATUS" -eq 0 ] || { show_all; false; }
	[[ $PEER_OUT =~ key_updates=([0-9]+) ]]
	[ "$(delta TlsRxRekeyOk)" -eq "${BASH_REMATCH[1]}" ]
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

# After fork both processes write through the one kernel TX state, but each had its own copy of
# the next traffic secret: two rekeys would install the same key at sequence 0 twice (a nonce
# used for two records). tests/lifecycle/fork-echo.c: parent and child take turns echoing 2 MiB
# through the OpenSSL peer with KTLS_SHIM_REKEY_RECORDS=50. The peer opens every record of both
# processes in order and its (key, sequence) only moves forward, so a repeated pair (a key
# installed again at 0 behind it) would fail its decryption. Only the parent rekeys; the child
# says once that its due key cannot be replaced and goes on under the current one.
@test "fork, parent and child take turns, keys change: the OpenSSL peer opens every record of both" {
	[ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ] ||
		skip "needs a kernel with TLS 1.3 rekey (tools/ktls-vm --kernel latest)"
	local dir=$BATS_TEST_TMPDIR turns=6 bytes=2097152
	C0=$(counters)
	start_peer peer "$PEER" --server --cert "$CERTS" --tls 1.3
	run env LD_PRELOAD="$(shim_preload)" KTLS_SHIM_LOG=debug KTLS_SHIM_LOG_FILE="$dir/shim.log" \
		KTLS_SHIM_REKEY_RECORDS=50 timeout "$APP_TIMEOUT" "$ROOT/build/tests/fork-echo" \
		"$CERTS" "$PEER_PORT" "$turns" "$bytes"
	APP_STATUS=$status APP_OUT=$output PEER_STATUS=0
	wait_peer || PEER_STATUS=$?
	PEER_OUT=$(cat "$dir/peer.out" "$dir/peer.err")
	[ "$APP_STATUS" -eq 0 ] && [ "$PEER_STATUS" -eq 0 ] || { show_all; false; }
	[ "$(grep -c ': ok$' <<<"$APP_OUT")" -eq "$turns" ]
	[[ $APP_OUT == *'PASS fork-echo'* ]]
	[[ $PEER_OUT == *"OK bytes=$((turns * bytes)) "* ]] || { show_all; false; }
	local updates pids
	updates=$(($(delta TlsTxRekeyOk) - PROBE))
	pids=$(grep ' tx key update ' "$dir/shim.log" | sed 's/\].*//' | sort -u | wc -l)
	echo "# TlsTxRekeyOk +$updates, by $pids process(es)"
	# 128 records a turn, a new key every 50 in the parent's 3 turns.
	[ "$updates" -ge 6 ] && [ "$pids" -eq 1 ] || { show_all; false; }
	[ "$(grep -c ' tx key update ' "$dir/shim.log")" -eq "$updates" ]
	# The parent counts the child's records too (the kernel's record number): a key that
	# carried a child's turn (128 records) is replaced at the parent's first write after it.
	local after max=0
	for after in $(sed -n 's/.* tx key update [0-9]* after \([0-9]*\) records$/\1/p' "$dir/shim.log"); do
		[ "$after" -ge 50 ] || { show_all; false; }
		[ "$after" -le "$max" ] || max=$after
	done
	echo "# most records under one replaced key: $max"
	[ "$max" -ge 128 ] || { show_all; false; }
	grep -q 'cannot be replaced: this process is a fork() child' "$dir/shim.log" || { show_all; false; }
	[ "$(delta TlsDecryptError)" -eq 0 ] && [ "$(delta TlsTxSw)" -eq $((1 + PROBE)) ] &&
		[ "$(delta TlsRxSw)" -eq 1 ]
}

# After fork a KeyUpdate from the peer may reach either process. Only the parent follows one: the
# child's read fails with Mbed TLS's own error for a KeyUpdate, the kernel keeps decryption paused
# at it, and the parent's next read fails the same way (EKEYEXPIRED) instead of hanging; nothing
# reuses a key. The OpenSSL peer sends a KeyUpdate after each 1 MiB it echoes, 2 MiB turns.
@test "fork: the peer's KeyUpdate read by the child is not followed: a clear error in both, no hang" {
	[ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ] ||
		skip "needs a kernel with TLS 1.3 rekey (tools/ktls-vm --kernel latest)"
	local dir=$BATS_TEST_TMPDIR
	C0=$(counters)
	start_peer peer "$PEER" --server --cert "$CERTS" --tls 1.3 --key-update-every 1M
	run env LD_PRELOAD="$(shim_preload)" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$dir/shim.log" \
		timeout "$APP_TIMEOUT" "$ROOT/build/tests/fork-echo" "$CERTS" "$PEER_PORT" 4 2097152
	APP_STATUS=$status APP_OUT=$output PEER_STATUS=0
	wait_peer || PEER_STATUS=$?
	PEER_OUT=$(cat "$dir/peer.out" "$dir/peer.err")
	[ "$APP_STATUS" -eq 1 ] && [ "$PEER_STATUS" -ne 124 ] || { show_all; false; }
	[[ $APP_OUT == *"turn 0 parent: ok"* ]] || { show_all; false; }
	[[ $APP_OUT == *"turn 1 child: $UNEXPECTED"* && $APP_OUT == *"turn 2 parent: $UNEXPECTED"* ]] ||
		{ show_all; false; }
	grep -q 'KeyUpdate received; this process is a fork() child' "$dir/shim.log" || { show_all; false; }
	# The parent followed the KeyUpdates of its own turn, the child none.
	[ "$(delta TlsRxRekeyOk)" -ge 1 ]
	[ "$(delta TlsRxRekeyError)" -eq 0 ]
}

# with_fault: the shim's preload with tests/fault/refuse-sockopt.c before it.
with_fault() {
	local preload
	preload=$(shim_preload) || return 1
	echo "${preload%"$SHIM"}$ROOT/build/tests/librefuse-sockopt.so:$SHIM"
}

# A rekey probe that fails for a passing reason (here socket() -> EMFILE once, right after the
# hand-off) is not the kernel's answer: it is asked again when the key is due, and the keys change
# as often as without the failure.
@test "rekey probe failed once (EMFILE): asked again, the TX key still changes every 100 records" {
	[ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ] ||
		skip "needs a kernel with TLS 1.3 rekey (tools/ktls-vm --kernel latest)"
	KU_PRELOAD=$(with_fault) SHIM_ENV=KTLS_TEST_SOCKET_EMFILE=1 rekey_case client 16K
	grep -q 'TLS 1.3 rekey probe failed (Too many open files)' "$BATS_TEST_TMPDIR/shim.log" ||
		{ show_all; false; }
}

# When the probe never succeeds, the due key cannot be replaced: said once in the log, and the
# records go on under it (as in Mbed TLS, which never rekeys); nothing else breaks.
@test "rekey probe always fails: the due TX key is logged once as not replaced, the transfer completes" {
	# (Without rekey the kernel's own table says so, and no probe is made: the cases above.)
	[ "$KTLS_EXPECT" = kernel ] && [ "$REKEY" = yes ] ||
		skip "needs a kernel with TLS 1.3 rekey (tools/ktls-vm --kernel latest)"
	C0=$(counters)
	SHIM_ENV="KTLS_SHIM_REKEY_RECORDS=100 KTLS_TEST_SOCKET_EMFILE=1000000000" APP_ARGS="--chunk 16K" \
		ku_run client "$(with_fault)" --chunk 16K
	[ "$APP_STATUS" -eq 0 ] && [ "$PEER_STATUS" -eq 0 ] || { show_all; false; }
	[[ $PEER_OUT == *"OK bytes="* ]]
	[ "$(delta TlsTxRekeyOk)" -eq 0 ]
	[ "$(delta TlsTxSw)" -eq 1 ]
	[ "$(grep -c "TX key is due for replacement .* cannot be replaced: the kernel's rekey probe failed" \
		"$BATS_TEST_TMPDIR/shim.log")" -eq 1 ] || { show_all; false; }
}
