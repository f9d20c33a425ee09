#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# The stand-in apps (tests/apps) on the host: every case passes with the apps as they are and
# again with the shim preloaded (each_mode; SHIM_MODES picks the modes), byte-exact both ways,
# and against OpenSSL and GnuTLS peers. Kernel counters are not asserted here (see offload.bats).

load lib

setup_file() {
	"$ROOT/tests/apps/gen-certs"
}

teardown() {
	lib_teardown
}

# conns ARGS...: how many connections a client with ARGS makes.
conns() {
	local c=1 p=1 given=0 resume=0
	while [ $# -gt 0 ]; do
		case $1 in
		--connections) c=$2 given=1 && shift ;;
		--parallel) p=$2 && shift ;;
		--resume) resume=1 ;;
		esac
		shift
	done
	[ "$resume" -eq 1 ] && [ "$given" -eq 0 ] && c=2
	echo $((c * p))
}

# pair ARGS...: our server and client, both with ARGS (each ignores the other's options), the
# server serving as many connections as the client makes. Both must succeed with one CONN line
# per connection; the client's lines are in $output, the server's in $SERVER_LOG.
pair() {
	local n
	n=$(conns "$@")
	start_server --serve "$n" "$@"
	run_client "$@"
	echo "$output"
	stop_server
	[ "$status" -eq 0 ]
	[ "$(grep -c '^CONN ' <<<"$output")" -eq "$n" ]
	[ "$(grep -c '^CONN ' "$SERVER_LOG")" -eq "$n" ]
}

# transfer TLS SUITE: 1 MiB each way with that suite, which both ends must report.
transfer() {
	pair --tls "$1" --suite "$2" --up 1M --down 1M
	grep -q "^CONN 0 version=TLSv$1 suite=$2 up=1048576 down=1048576 resumed=no close=notify" \
		"$SERVER_LOG"
	grep -q "^CONN 0 version=TLSv$1 suite=$2 up=1048576 down=1048576 resumed=no close=notify" \
		<<<"$output"
}

@test "TLS 1.2 AES-128-GCM, 1 MiB each way" {
	each_mode transfer 1.2 TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256
}
@test "TLS 1.2 AES-256-GCM, 1 MiB each way" {
	each_mode transfer 1.2 TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384
}
@test "TLS 1.2 CHACHA20-POLY1305, 1 MiB each way" {
	each_mode transfer 1.2 TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256
}
@test "TLS 1.2 AES-128-CCM, 1 MiB each way" {
	each_mode transfer 1.2 TLS-ECDHE-ECDSA-WITH-AES-128-CCM
}
@test "TLS 1.3 AES-128-GCM, 1 MiB each way" {
	each_mode transfer 1.3 TLS1-3-AES-128-GCM-SHA256
}
@test "TLS 1.3 AES-256-GCM, 1 MiB each way" {
	each_mode transfer 1.3 TLS1-3-AES-256-GCM-SHA384
}
@test "TLS 1.3 CHACHA20-POLY1305, 1 MiB each way" {
	each_mode transfer 1.3 TLS1-3-CHACHA20-POLY1305-SHA256
}
@test "TLS 1.3 AES-128-CCM, 1 MiB each way" {
	each_mode transfer 1.3 TLS1-3-AES-128-CCM-SHA256
}

@test "non-blocking sockets" {
	each_mode pair --tls 1.3 --nonblock --up 4M --down 4M
	each_mode pair --tls 1.2 --nonblock --up 4M --down 4M
}

# resumption TLS TICKETS RESUMED: three connections; RESUMED of the two later ones resume.
resumption() {
	pair --tls "$1" --tickets "$2" --resume --connections 3 --up 64K --down 64K
	[ "$(grep -c '^RESUMED no$' <<<"$output")" -eq $((3 - $3)) ]
	[ "$(grep -c '^RESUMED yes$' <<<"$output")" -eq "$3" ]
	[ "$(grep -c 'resumed=yes' "$SERVER_LOG")" -eq "$3" ]
}

@test "TLS 1.3 tickets 0, 1, 3 and resumption" {
	each_mode resumption 1.3 0 0
	each_mode resumption 1.3 1 2
	each_mode resumption 1.3 3 2
}

@test "TLS 1.2 session tickets and resumption" {
	each_mode resumption 1.2 0 0
	each_mode resumption 1.2 1 2
}

@test "client certificate required and verified" {
	each_mode pair --tls 1.3 --client-cert --up 256K --down 256K
	each_mode pair --tls 1.2 --client-cert --up 256K --down 256K
}

@test "certificate chain of 8 intermediates" {
	each_mode pair --tls 1.3 --chain 8 --client-cert --up 256K --down 256K
	each_mode pair --tls 1.2 --chain 8 --up 256K --down 256K
}

# hrr: our pair with --hrr, and proof that the server really asks: OpenSSL's trace shows a second
# ClientHello when it offers the client's groups.
hrr() {
	pair --tls 1.3 --hrr --up 1M --down 1M
	start_server --serve 1 --tls 1.3 --hrr
	openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CERTS/ca.crt" -verify_return_error \
		-groups X25519:P-256 -trace </dev/null >"$BATS_TEST_TMPDIR/hrr.trace" 2>&1
	stop_server
	[ "$(grep -c '^ *ClientHello,' "$BATS_TEST_TMPDIR/hrr.trace")" -eq 2 ]
}

@test "TLS 1.3 HelloRetryRequest" { each_mode hrr; }

# timeouts TLS: one side pauses after the handshake while the other's reads time out and retry.
timeouts() {
	local data=(--tls "$1" --up 256K --down 256K)
	start_server --serve 1 "${data[@]}" --read-timeout 100
	run_client "${data[@]}" --delay 350
	stop_server
	[ "$status" -eq 0 ]
	grep -Eq '^CONN 0 .* timeouts=[1-9]' "$SERVER_LOG"
	start_server --serve 1 "${data[@]}" --delay 350
	run_client "${data[@]}" --read-timeout 100
	stop_server
	[ "$status" -eq 0 ]
	grep -Eq '^CONN 0 .* timeouts=[1-9]' <<<"$output"
}

@test "read timeouts (recv_timeout callback)" {
	each_mode timeouts 1.3
	each_mode timeouts 1.2
}

@test "100-byte writes and reads" {
	each_mode pair --tls 1.3 --chunk 100 --up 256K --down 256K
	each_mode pair --tls 1.2 --chunk 100 --up 256K --down 256K --nonblock
}

@test "pre-data exchanged before the bulk transfer" {
	each_mode pair --tls 1.3 --tickets 2 --pre-data 50000 --up 1M --down 1M
	each_mode pair --tls 1.2 --pre-data 100 --up 1M --down 1M
}

@test "20 sequential connections on one context each side" {
	each_mode pair --tls 1.3 --connections 20 --up 16K --down 16K
}

@test "8 concurrent connections" {
	each_mode pair --threads --parallel 8 --up 1M --down 1M
	each_mode pair --tls 1.2 --threads --parallel 4 --connections 2 --tickets 1 --resume \
		--up 256K --down 256K
}

# keylog TLS LABEL...: each side's own key log has one line per LABEL and connection (2).
keylog() {
	local tls=$1 dir=$BATS_TEST_TMPDIR label side
	shift
	rm -f "$dir"/*.keys
	start_server --serve 2 --tls "$tls" --keylog "$dir/server.keys" --up 4K
	run_client --tls "$tls" --keylog "$dir/client.keys" --connections 2 --up 4K
	stop_server
	[ "$status" -eq 0 ]
	for side in server client; do
		for label in "$@"; do
			[ "$(grep -cE "^$label [0-9a-f]{64} [0-9a-f]{64,96}$" "$dir/$side.keys")" -eq 2 ]
		done
		[ "$(wc -l <"$dir/$side.keys")" -eq $((2 * $#)) ]
	done
	cmp <(sort "$dir/server.keys") <(sort "$dir/client.keys")
}

@test "the app's own key log gets every secret" {
	each_mode keylog 1.3 CLIENT_HANDSHAKE_TRAFFIC_SECRET SERVER_HANDSHAKE_TRAFFIC_SECRET \
		CLIENT_TRAFFIC_SECRET_0 SERVER_TRAFFIC_SECRET_0
	each_mode keylog 1.2 CLIENT_RANDOM
}

@test "echo mode" {
	each_mode pair --tls 1.3 --echo --up 1M --chunk 1000
}

# mismatch: wrong bytes, missing bytes and extra bytes are each an ERROR naming the offset.
mismatch() {
	head -c 4096 /dev/zero >"$BATS_TEST_TMPDIR/zeros"
	start_server --serve 1 --up 4K
	run_client --send-file "$BATS_TEST_TMPDIR/zeros"
	stop_server || [ "$SERVER_STATUS" -eq 1 ]
	grep -Eq '^ERROR conn=0 up: byte at offset [0-9]+ is 0x00, expected 0x[0-9a-f]{2}$' "$SERVER_LOG"
	start_server --serve 1 --down 8K
	run_client --down 16K
	stop_server
	[ "$status" -eq 1 ]
	grep -q '^ERROR conn=0 down: peer closed (notify) after 8192 of 16384 bytes$' <<<"$output"
	start_server --serve 1 --up 1K
	run_client --up 2K
	stop_server || [ "$SERVER_STATUS" -eq 1 ]
	grep -q '^ERROR conn=0 1024 unexpected bytes after the last phase' "$SERVER_LOG"
}

@test "corrupted, missing and extra bytes are errors" { each_mode mismatch; }

@test "usage: --help and bad options" {
	run "$APPS/mbed-server" --help
	[ "$status" -eq 0 ]
	grep -q -- '--serve N' <<<"$output"
	run "$APPS/mbed-client" --up 12Q
	[ "$status" -eq 2 ]
	grep -q '^ERROR --up wants a byte count' <<<"$output"
	run "$APPS/mbed-client" --suite NO-SUCH-SUITE
	[ "$status" -eq 2 ]
}

# --- peers that are not ours (tests/lib.bash) ---

@test "interop: our client against openssl s_server, both directions" { each_mode interop_openssl_server; }
@test "interop: openssl s_client against our server, both directions" { each_mode interop_openssl_client; }
@test "interop: GnuTLS client and server" { each_mode interop_gnutls; }
