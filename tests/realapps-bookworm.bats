#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# Debian 12's own programs, unchanged, on its Mbed TLS 2.28 (libmbedtls.so.14), with the shim
# preloaded: lighttpd 1.4.69 + mod_mbedtls (dlopen()ed after start), run from the private root
# tests/realapps/setup-bookworm prepares; and two Mbed TLS copies (2.28 and 3.6) in one process.
# Helpers, set-up, KTLS_EXPECT and KTLS_TEST_QUICK as in tests/realapps.bats (tests/realapps/lib.bash).
load realapps/lib

# Debian 12's own lighttpd 1.4.69 + mod_mbedtls on Mbed TLS 2.28: lighttpd dlopen()s mod_mbedtls,
# and so libmbedtls.so.14, after start. The shim, linking no Mbed TLS, finds that copy at first use
# and offloads it with its 2.28 adapter (a shim that pulled its own 3.6 into the process made
# lighttpd abort at start). The same cases as Debian 13's (tests/realapps/lib.bash, expect_served:
# every connection tx=kernel rx=kernel with matching /proc/net/tls_stat deltas, or the fallback's
# reason on the host), TLS 1.2 only (2.28 has no TLS 1.3).

@test "Debian 12 lighttpd (2.28) TLS 1.2: curl HTTP/1.1 and HTTP/2, 64 MiB and small on one kept-alive connection" {
	LT=$RA12 curl_case 1.2
}

# The client is the stand-in built against 2.28 (build/apps228, make): both ends on 2.28.
@test "Debian 12 lighttpd (2.28) TLS 1.2: mbed-client (2.28) with the shim too, 64 MiB" {
	local apps228=${APPS228:-$ROOT/build/apps228}
	[ -x "$apps228/mbed-client" ] || { echo "# no 2.28 mbed-client in $apps228 (make)"; false; }
	APPS=$apps228 LT=$RA12 mbed_client_case 1.2
}

@test "Debian 12 lighttpd (2.28) TLS 1.2: 24 MiB uploads read by lighttpd (HTTP/1.1 and HTTP/2)" {
	LT=$RA12 upload_case 1.2
}

@test "Debian 12 lighttpd (2.28) TLS 1.2: 50 concurrent curl clients" {
	LT=$RA12 parallel_case 1.2
}

# lighttpd 1.4.69 decides to retry with NULL from Mbed TLS's private ssl.out_left: in Mbed TLS
# (host) the bytes wait there and it retries with NULL; with TX in the kernel nothing waits there,
# and it writes the same data again, which the shim must accept as new (byte-exact, no mismatch).
@test "Debian 12 lighttpd (2.28): slow reader, small socket buffers: WANT_WRITE and its retries, TLS 1.2" {
	NULL_RETRIES=$([ "$KTLS_EXPECT" = kernel ] && echo none || echo some) LT=$RA12 slow_reader_case 1.2
}

# make install, then the installed library with the build's Mbed TLS copies hidden (empty tmpfs
# over build/mbedtls and build/mbedtls-2.28, in a private mount namespace): it loads on its own and
# offloads Debian 12's 2.28 lighttpd and Debian 13's 3.6 one.
@test "make install: the installed shim needs nothing from build/ (2.28 and 3.6 offload)" {
	local readelf
	readelf=$(readelf -d "$SHIM")
	if grep -qE 'NEEDED.*libmbed|RPATH|RUNPATH' <<<"$readelf"; then
		echo "# $SHIM links Mbed TLS or has a run path:"
		grep -E 'NEEDED|RPATH|RUNPATH' <<<"$readelf"
		false
	fi
	make -s -C "$ROOT" install DESTDIR="$D/inst" PREFIX=/usr/local >"$D/install.out" 2>&1 ||
		{ show "$D/install.out"; false; }
	local inst=$D/inst/usr/local/lib/libktlsshim.so
	local hide=(unshare -m sh -c 'mount -t tmpfs tmpfs "$0" && mount -t tmpfs tmpfs "$1" && shift && exec "$@"'
		"$ROOT/build/mbedtls" "$ROOT/build/mbedtls-2.28")
	LT=$RA12 start_lighttpd 1.2 LD_PRELOAD="$inst" "${hide[@]}"
	curl_get --http1.1 "$D/old" small
	stop_lighttpd
	expect_served 1 1.2
	rm -f "$D/shim.log"
	counters_start
	start_lighttpd 1.3 LD_PRELOAD="$inst" "${hide[@]}"
	curl_get --http1.1 "$D/new" "$BIG"
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 1 1.3
	expect_counters 1
	figures "installed $(basename "$inst") from $D/inst, build/mbedtls* hidden: 2.28 then 3.6, each TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

# The wrappers called directly (python3 ctypes) on a context that was never set up: no Mbed TLS at
# all (a wrapper returns MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE, one line), 2.28 alone (its own
# answer; the 3.6-only wrappers do nothing; no line), 2.28 and 3.6 both loaded (pass-through, one
# line). Never a crash.
@test "pass-through: no Mbed TLS, 3.6-only wrappers under 2.28, two copies: no crash, the right line" {
	local lib36=$ROOT/build/mbedtls/usr/lib/x86_64-linux-gnu lib228=$RA12/root/usr/lib/x86_64-linux-gnu
	cat >"$D/calls.py" <<'PY'
import ctypes, sys
for path in sys.argv[2:]:
    ctypes.CDLL(path)
shim = ctypes.CDLL(sys.argv[1])
ssl, conf = ctypes.create_string_buffer(65536), ctypes.create_string_buffer(65536)
shim.mbedtls_ssl_init(ssl)
shim.mbedtls_ssl_config_init(conf)
shim.mbedtls_ssl_set_export_keys_cb(ssl, None, None)
shim.mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(conf, 1)
print("read %d" % shim.mbedtls_ssl_read(ssl, ssl, 1))
shim.mbedtls_ssl_free(ssl)
shim.mbedtls_ssl_config_free(conf)
PY
	run_calls() {
		rm -f "$D/shim.log"
		LD_LIBRARY_PATH="$lib36:$lib228" LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info \
			KTLS_SHIM_LOG_FILE="$D/shim.log" python3 "$D/calls.py" "$SHIM" "$@" >"$D/calls.out" 2>&1 ||
			{ echo "# python3 exit $?"; show "$D/calls.out" "$D/shim.log"; return 1; }
	}
	# expect READ [LINE]: what mbedtls_ssl_read returned, and the shim's only line (none without).
	expect() {
		local lines=0
		[ ! -s "$D/shim.log" ] || lines=$(grep -c . "$D/shim.log")
		if grep -qx "read $1" "$D/calls.out" && if [ -z "${2:-}" ]; then [ "$lines" -eq 0 ]; else
			[ "$lines" -eq 1 ] && grep -qE "^ktlsshim\[[0-9]+\]: $2; passing every call through$" "$D/shim.log"
		fi; then
			return 0
		fi
		echo "# want read $1 and '${2:-no line}'"
		show "$D/calls.out" "$D/shim.log"
		return 1
	}
	run_calls
	expect -28800 'no Mbed TLS in the process'
	# 2.28 alone has its adapter: the 3.6-only wrappers do nothing, the read is 2.28's own answer
	run_calls "$lib228/libmbedtls.so.14"
	expect -28928
	run_calls "$lib228/libmbedtls.so.14" "$lib36/libmbedtls.so.21"
	expect -28928 'two Mbed TLS copies in the process'
	figures "no Mbed TLS, 2.28 alone, 2.28 + 3.6: no crash, the line each says"
}

# Two copies in one process, each used by a plugin of its own (tests/realapps/side.c, loaded
# RTLD_LOCAL like a daemon's module; the Mbed TLS libraries' internal calls go through the shim
# too): every pass-through call must reach its caller's copy. Each side does a full handshake and
# 100 KB each way over a socketpair; every load order, and a copy loaded after the other's first
# connection; the 2.28 side's key export callback (set on its configs) fires once per handshake.
# With each call sent to the copy found first, the other side's handshake failed (-0x7400) or the
# process crashed (SIGSEGV); with 2.28's config export setters sent to the first copy, a 3.6-first
# process lost the 2.28 side's callback. Last order: 2.28 contexts set up (their configs hooked)
# before a 3.6 copy is loaded RTLD_GLOBAL and used, then the 2.28 callbacks set (the older one on
# one config, _ext on the other) and the handshake run by the first read/write. The older setter
# once reached Mbed TLS, which put the app's pointer beside the shim's _ext callback; the shim then
# took it for its own record (SIGSEGV). The implicit handshake went to the global 3.6 copy.
@test "two Mbed TLS copies (2.28 and 3.6 plugins): each call reaches its caller's copy, in any load order" {
	local lib36=$ROOT/build/mbedtls/usr/lib/x86_64-linux-gnu lib228=$RA12/root/usr/lib/x86_64-linux-gnu
	# (no sibling calls: a tail call returns to the plugin's caller, not from the plugin)
	gcc -O2 -fno-optimize-sibling-calls -Wall -Werror -fPIC -shared -o "$D/side228.so" \
		"$BATS_TEST_DIRNAME/realapps/side.c" -L"$lib228" -Wl,--no-as-needed -l:libmbedtls.so.14 \
		-Wl,--disable-new-dtags,-rpath,"$lib228"
	gcc -O2 -fno-optimize-sibling-calls -Wall -Werror -fPIC -shared -o "$D/side36.so" \
		"$BATS_TEST_DIRNAME/realapps/side.c" -L"$lib36" -Wl,--no-as-needed -l:libmbedtls.so.21 \
		-Wl,--disable-new-dtags,-rpath,"$lib36"
	local a=load:228:$D/side228.so:$lib228/libmbedtls.so.14:$lib228/libmbedx509.so.1:$lib228/libmbedcrypto.so.7
	local b=load:36:$D/side36.so:$lib36/libmbedtls.so.21:$lib36/libmbedx509.so.7:$lib36/libmbedcrypto.so.16
	local order st
	for order in "$a $b run:228 run:36 run:228" "$b $a run:36 run:228 run:36" \
		"$a run:228 $b run:36 run:228" "$b run:36 $a run:228 run:36" \
		"$a setup:228 ${b/#load/gload} setup:36 run:228 run:36"; do
		rm -f "$D/shim.log"
		st=0
		# shellcheck disable=SC2086 # the steps are words
		LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$D/shim.log" timeout 120 \
			python3 "$BATS_TEST_DIRNAME/realapps/two-copies.py" "$CERTS" $order >"$D/out" 2>&1 || st=$?
		local want
		want=$(grep -o 'run:[0-9]*' <<<"$order" | sed 's/run:\(.*\)/\1: TLS ok, 102400 bytes each way/')
		if [ "$st" -ne 0 ] || [ "$(cat "$D/out")" != "$want" ]; then
			echo "# steps $(grep -oE '(g?load|setup|run):[0-9]+' <<<"$order" | tr '\n' ' '): exit $st"
			show "$D/out" "$D/shim.log"
			false
		fi
		# One line says the copies were seen; the 3.6 connections made while it was alone are
		# the shim's (user space: mbedtls_net_send/recv on a socketpair), nothing else.
		grep -qE 'two Mbed TLS copies in the process; passing every call through$|another Mbed TLS copy was loaded; new connections pass through, each call to its caller.s copy$' \
			"$D/shim.log" || { show "$D/shim.log"; false; }
		! grep -v -e 'Mbed TLS' -e ' tx=user(not a TCP socket) rx=user(not a TCP socket)$' \
			"$D/shim.log" || { show "$D/shim.log"; false; }
	done
	figures "2.28 and 3.6 in one process, 5 load orders: every handshake and transfer on its own copy"
}

# Debian 12's privoxy 3.0.34 (linked with 2.28) with https-inspection between curl and an OpenSSL
# origin (openssl s_server -WWW): per request it is a TLS server towards curl, with a certificate
# it makes on the fly from a CA of its own, and a TLS client towards the origin, in one process.
# expect_proxied N: privoxy's N connections from curl (role=server) and N to the origin
# (role=client), TLS 1.2, each offloaded (kernel) or in user space for the kernel's lack of kTLS
# (host); the kernel's counters moved by 2N each way.
expect_proxied() {
	expect_conns " role=server " "$1" 1.2
	expect_conns " role=client " "$1" 1.2
	expect_counters $((2 * $1))
}

@test "Debian 12 privoxy 3.0.34 (2.28) https-inspection, curl -> privoxy -> OpenSSL origin: byte-exact, both roles" {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$D/pca.key" -out "$D/pca.crt" -days 2 \
		-subj "/CN=privoxy test CA" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign >"$D/ca.out" 2>&1 || { show "$D/ca.out"; false; }
	local oport
	oport=$(free_port)
	(cd "$RA/www" && exec openssl s_server -quiet -WWW -accept "$oport" -cert "$CERTS/server-rsa.crt" \
		-key "$CERTS/server-rsa.key") >"$D/origin.out" 2>&1 &
	_PIDS+=("$!")
	listening "$!" "$oport" || { echo "# the origin did not start"; show "$D/origin.out"; false; }
	PORT=$(free_port)
	mkdir "$D/certs"
	cat >"$D/privoxy.conf" <<CONF
listen-address 127.0.0.1:$PORT
confdir $D
logdir $D
logfile privoxy.log
actionsfile https.action
ca-directory $D
ca-cert-file pca.crt
ca-key-file pca.key
certificate-directory $D/certs
trusted-cas-file $CERTS/ca.crt
CONF
	printf '{+https-inspection}\n/\n' >"$D/https.action"
	env LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$D/shim.log" \
		"$RA12/bin/privoxy" --no-daemon "$D/privoxy.conf" >"$D/privoxy.out" 2>&1 &
	LPID=$!
	_PIDS+=("$LPID")
	listening "$LPID" "$PORT" || { echo "# privoxy did not start"; show "$D/privoxy.out" "$D/privoxy.log"; false; }
	local n
	for n in "$BIG" mid small; do
		"${CURL[@]}" --fail --cacert "$D/pca.crt" --proxy "http://127.0.0.1:$PORT" \
			"https://localhost:$oport/$n" -o "$D/got.$n" 2>"$D/curl.err" ||
			{ show "$D/curl.err" "$D/privoxy.log" "$D/origin.out" "$D/shim.log"; false; }
		same_as "$D/got.$n" "$n"
	done
	kill -TERM "$LPID"
	wait "$LPID" || true
	counters_delta
	# privoxy checked the origin's certificate and logged no error
	! grep -E 'Error|Fatal' "$D/privoxy.log" || { show "$D/privoxy.log"; false; }
	expect_proxied 3
	figures "3 requests ($(size_of "$BIG") + $(size_of mid) + $(size_of small) bytes) through privoxy; TlsTxSw +$d_tx TlsRxSw +$d_rx"
}

# Debian 12's mongrel2 1.12.2 (linked with 2.28) serving static files over TLS to curl: use_ssl,
# its certificate and key in certdir under the server's uuid, a chroot of its own, in the
# foreground (m2sh loads the configuration into the SQLite file mongrel2 reads).
@test "Debian 12 mongrel2 1.12.2 (2.28): static files over TLS 1.2 to curl, byte-exact; its own BIO stays in Mbed TLS" {
	local u=5b3b4a6e-0d6c-4e0e-9d1e-6f2f1c7a8b90 m=$D/m2
	mkdir -p "$m"/{logs,run,certs,www}
	cp "$RA/www/$BIG" "$RA/www/small" "$m/www/"
	cp "$CERTS/server-rsa.crt" "$m/certs/$u.crt"
	cp "$CERTS/server-rsa.key" "$m/certs/$u.key"
	PORT=$(free_port)
	cat >"$m/m2.conf" <<CONF
main = Server(uuid="$u", access_log="/logs/access.log", error_log="/logs/error.log", chroot="./",
    default_host="localhost", name="test", pid_file="/run/mongrel2.pid", port=$PORT, use_ssl=1,
    hosts=[Host(name="localhost", routes={
        '/': Dir(base='www/', index_file='index.html', default_ctype='application/octet-stream')})])
settings = {"certdir": "./certs/", "server.daemonize": 0}
servers = [main]
CONF
	(cd "$m" && LOGNAME=test "$RA12/bin/m2sh" load -config m2.conf -db config.sqlite) >"$D/m2sh.out" 2>&1 ||
		{ show "$D/m2sh.out"; false; }
	# (the shim's lines on stderr: a log file outside the chroot cannot be opened from inside)
	(cd "$m" && exec env LD_PRELOAD="$SHIM" KTLS_SHIM_LOG=info "$RA12/bin/mongrel2" config.sqlite "$u") \
		>"$D/mongrel2.out" 2>&1 &
	LPID=$!
	_PIDS+=("$LPID")
	listening "$LPID" "$PORT" || { echo "# mongrel2 did not start"; show "$D/mongrel2.out" "$m/logs/error.log"; false; }
	curl_get --http1.1 "$D/m" "$BIG" small
	kill -TERM "$LPID"
	wait "$LPID" || true
	counters_delta
	grep -a '^ktlsshim\[' "$D/mongrel2.out" >"$D/shim.log" || true
	# mongrel2 moves its records with BIO callbacks of its own, its coroutine I/O on a
	# non-blocking socket: on EAGAIN the callback switches to its scheduler, which polls with a
	# timeout. The connection stays in Mbed TLS with the reason (on this host without kTLS, the
	# kernel's lack of it does as well).
	HOST_OK=1 expect_bio_fallback "ktlsshim[" 1 1.2
	expect_counters 0
	figures "mongrel2: $(size_of "$BIG") + $(size_of small) bytes on one connection; $(cut -d' ' -f2- "$D/shim.log")"
}
