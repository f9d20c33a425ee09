#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# The linkable API (include/ktlsshim.h): an application that takes the kernel parameters with
# ktlsshim_export and installs kTLS on its own socket, talking to OpenSSL. Inside ktls-vm the
# kernel must carry 16 MiB each way byte-exact; on the host the export still works and the
# application's own TCP_ULP is refused (no kTLS there). KTLS_TEST_QUICK=1: 1 MiB each way.

load lib

setup_file() {
	[ -n "${KTLS_EXPECT:-}" ] || export KTLS_EXPECT=user
	export SIZE=16M
	[ -z "${KTLS_TEST_QUICK:-}" ] || SIZE=1M
	# TLS 1.3 rekey in this kernel (Linux 6.14+), as the kernel's own probe sees it.
	export REKEY=no
	[[ $("$ROOT/build/tools/ktls-probe" --json) != *'"rekey":true'* ]] || REKEY=yes
}

teardown() { lib_teardown; }

export_case() {
	local tls=$1 dir=$BATS_TEST_TMPDIR
	head -c "$SIZE" /dev/urandom >"$dir/down"
	head -c "$SIZE" /dev/urandom >"$dir/up"
	local tx0 rx0
	tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw)
	rm -f "$dir/port"
	"$ROOT/build/tests/export-server" "$dir/port" "$CERTS" "$tls" "$dir/down" "$dir/got-up" \
		>"$dir/server.out" 2>&1 &
	local spid=$!
	_BG_PIDS+=("$spid")
	for _ in $(seq 200); do [ -s "$dir/port" ] && break; sleep 0.05; done
	timeout 120 openssl s_client -quiet -connect "127.0.0.1:$(cat "$dir/port")" -CAfile "$CERTS/ca.crt" \
		-verify_return_error <"$dir/up" >"$dir/got-down" 2>"$dir/s_client.err" || true
	local src=0
	wait "$spid" || src=$?
	cat "$dir/server.out"
	if [ "$KTLS_EXPECT" = kernel ]; then
		[ "$src" -eq 0 ]
		grep -q "^EXPORTED TLSv$tls " "$dir/server.out"
		cmp "$dir/up" "$dir/got-up"
		cmp "$dir/down" "$dir/got-down"
		[ $(($(tls_stat TlsTxSw) - tx0)) -eq 1 ]
		[ $(($(tls_stat TlsRxSw) - rx0)) -eq 1 ]
	else
		[ "$src" -ne 0 ]
		grep -q "^ERROR TCP_ULP: 2$" "$dir/server.out" # ENOENT: no kTLS on this kernel
	fi
}

@test "ktlsshim_export: the app installs TLS 1.3 kTLS itself, $SIZE each way with OpenSSL" { export_case 1.3; }
@test "ktlsshim_export: the app installs TLS 1.2 kTLS itself, $SIZE each way with OpenSSL" { export_case 1.2; }

# secret_scan TLS MODE: tests/api/secret-scan.c against an echo server, the shim logging at debug
# level. After the hand-off (automatic, or ktlsshim_offload in manual mode) ktlsshim_debug_count
# finds none of the connection's secrets, keys and IVs, and neither does a search of the log; in
# manual mode the hook first has to find the secrets the shim still holds (so that 0 means
# something). Inside ktls-vm both directions must be in the kernel by then.
secret_scan() {
	local tls=$1 mode=$2 dir=$BATS_TEST_TMPDIR
	start_server --serve 1 --tls "$tls" --echo
	local tx0 rx0
	tx0=$(tls_stat TlsTxSw) rx0=$(tls_stat TlsRxSw)
	run env KTLS_SHIM_LOG=debug KTLS_SHIM_LOG_FILE="$dir/shim.log" \
		"$ROOT/build/tests/secret-scan" "$PORT" "$CERTS" "$tls" "$mode"
	stop_server
	printf '# %s\n' "${lines[@]}"
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} =~ ^SCAN\ TLSv$tls\ .*needles=([0-9]+)\ before=([0-9]+)\ after=0\ next=([0-9]+)\ in_log=0\ offloaded=([0-9]+)$ ]]
	[ "${BASH_REMATCH[1]}" -ge 5 ]
	if [ "$mode" = manual ]; then [ "${BASH_REMATCH[2]}" -ge 1 ]; fi
	local want=0 next=${BASH_REMATCH[3]}
	[ "$KTLS_EXPECT" = user ] || want=1
	[ "${BASH_REMATCH[4]}" -eq $((want * 3)) ]
	# The next secrets (TLS 1.3): one per direction where the kernel can rekey and owns both
	# (so the scan does find them), none where it cannot (nothing kept that cannot be used).
	local want_next=0
	if [ "$tls" = 1.3 ] && [ "$want" = 1 ] && [ "$REKEY" = yes ]; then want_next=2; fi
	echo "# next secrets kept: $next (want $want_next)"
	[ "$next" -eq "$want_next" ]
	# The kernel counted the client's TX and RX (the server is plain Mbed TLS).
	[ $(($(tls_stat TlsTxSw) - tx0)) -eq "$want" ]
	[ $(($(tls_stat TlsRxSw) - rx0)) -eq "$want" ]
	[ -s "$dir/shim.log" ]
}

@test "no secret, key or IV left in the shim or its debug log after the hand-off: TLS 1.3" {
	secret_scan 1.3 auto
	secret_scan 1.3 manual
}
@test "no secret, key or IV left in the shim or its debug log after the hand-off: TLS 1.2" {
	secret_scan 1.2 auto
	secret_scan 1.2 manual
}
