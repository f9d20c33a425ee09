#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# Real programs that drive Mbed TLS through BIO callbacks of their own (issue 15), unchanged, from
# the private root tests/realapps/setup prepares: MicroPython's `tls` module (client and server),
# libgit2 cloning and pushing over HTTPS (tests/realapps/git-client.c calls its public API; the BIO
# is libgit2's) and nng's nngcat. Their peers: Debian 13's lighttpd (serving git-http-backend for
# libgit2), curl, openssl s_server, and nngcat itself.
#
# Where the shim can prove the socket behind the callbacks (MicroPython, libgit2 by default), the
# connection must be carried by the kernel in both directions inside tools/ktls-vm
# (KTLS_EXPECT=kernel: `tx=kernel rx=kernel`, /proc/net/tls_stat counts every shimmed connection)
# and go through the fallback on the host. Where it cannot (nng's buffering BIO; libgit2 polling
# with its own timeout), it must say why and stay in Mbed TLS on any kernel. Every byte is checked,
# and what the program sees when its socket times out must not change with the kernel.
# KTLS_TEST_QUICK=1: www/mid instead of the 64 MiB www/big (MicroPython's uploads stay 24 MiB, as
# in tests/realapps.bats) and of the 24 MiB libgit2 clones and pushes.
load realapps/lib

# shimmed CMD...: CMD with the shim preloaded ($PRELOAD: another LD_PRELOAD), logging to
# $D/shim.log, killed after 300 s.
shimmed() {
	env LD_PRELOAD="${PRELOAD:-$SHIM}" KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE="$D/shim.log" timeout 300 "$@"
}

# ---- MicroPython ----

# The client: a GET of www/$BIG, then a POST of www/slow (24 MiB) to lighttpd's sha256 CGI, one
# connection each; the body goes to a file as it arrives.
micropython_client_case() {
	local tls=$1 st=0
	start_lighttpd "$tls"
	shimmed "$RA/bin/micropython" "$BATS_TEST_DIRNAME/realapps/fetch.py" 127.0.0.1 "$PORT" \
		"/$BIG" "$CERTS/ca.crt" "$D/mp.big" >"$D/mp.out" 2>&1 || st=$?
	[ "$st" -eq 0 ] || { echo "# micropython GET exit $st"; show "$D/mp.out" "$D/shim.log"; false; }
	grep -q '^HTTP/1.1 200 OK' "$D/mp.out" || { show "$D/mp.out"; false; }
	same_as "$D/mp.big" "$BIG"
	shimmed "$RA/bin/micropython" "$BATS_TEST_DIRNAME/realapps/fetch.py" 127.0.0.1 "$PORT" \
		/sha256 "$CERTS/ca.crt" "$D/mp.up" "$RA/www/slow" >"$D/mp.out" 2>&1 || st=$?
	[ "$st" -eq 0 ] || { echo "# micropython POST exit $st"; show "$D/mp.out" "$D/shim.log"; false; }
	if [ "$(tr '\n' ' ' <"$D/mp.up")" != "$(sha_of slow) $(size_of slow) " ]; then
		echo "# upload: the CGI got $(tr '\n' ' ' <"$D/mp.up"); want $(sha_of slow) $(size_of slow)"
		false
	fi
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 2 "$tls"
	expect_conns " role=client " 2 "$tls"
	expect_counters 4
	figures "TLS $tls: micropython GET $(size_of "$BIG") and POST $(size_of slow) bytes; $(grep -F " role=client " "$D/shim.log" | head -n 1 | cut -d' ' -f2-)"
}

@test "MicroPython tls client (custom BIO) against lighttpd TLS 1.3: download and upload, byte-exact, offloaded" {
	micropython_client_case 1.3
}

@test "MicroPython tls client (custom BIO) against lighttpd TLS 1.2: download and upload, byte-exact, offloaded" {
	micropython_client_case 1.2
}

# The opt-out a program that needs its callbacks runs with: every connection stays in Mbed TLS,
# its callbacks called for every record, and the line says why.
@test "MicroPython tls client with KTLS_SHIM_CUSTOM_BIO=0: byte-exact, stays in Mbed TLS" {
	local st=0
	start_lighttpd 1.3
	KTLS_SHIM_CUSTOM_BIO=0 shimmed "$RA/bin/micropython" "$BATS_TEST_DIRNAME/realapps/fetch.py" \
		127.0.0.1 "$PORT" /mid "$CERTS/ca.crt" "$D/mp.mid" >"$D/mp.out" 2>&1 || st=$?
	[ "$st" -eq 0 ] || { echo "# micropython GET exit $st"; show "$D/mp.out" "$D/shim.log"; false; }
	same_as "$D/mp.mid" mid
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 1 1.3
	expect_bio_fallback " role=client " 1 1.3 "offload turned off \(KTLS_SHIM_CUSTOM_BIO=0\)"
	expect_counters 1
	figures "TLS 1.3: micropython $(size_of mid) bytes; $(grep -F " role=client " "$D/shim.log" | cut -d' ' -f2-)"
}

# settimeout(1) puts SO_RCVTIMEO on the socket, and MicroPython's BIO turns its EAGAIN into
# ETIMEDOUT where the shim, after a hand-off, would answer WANT_READ (read() returning None). The
# handshake never times out, so only the socket's mode tells: the connection must stay in Mbed TLS
# with that reason. The server (openssl s_server, -naccept 2) completes the handshake and then says
# nothing: the program's read must fail after the timeout exactly as with KTLS_SHIM_CUSTOM_BIO=0
# on the same server just before: same exit status, same output.
@test "MicroPython tls client with a 1 s socket timeout, its server silent: stays in Mbed TLS, the same error as with custom BIOs off" {
	local try spid='' bio st t0 ms=()
	mkfifo "$D/in"
	for try in 1 2 3 4 5; do
		PORT=$(free_port)
		timeout 120 openssl s_server -accept "127.0.0.1:$PORT" -cert "$CERTS/server-rsa.crt" \
			-key "$CERTS/server-rsa.key" -tls1_3 -naccept 2 -quiet <"$D/in" >"$D/ss.out" 2>&1 &
		spid=$!
		_PIDS+=("$spid")
		exec 8>"$D/in" # (its input stays open and silent until the end)
		listening "$spid" "$PORT" && break
		exec 8>&-
		spid=''
	done
	[ -n "$spid" ] || { echo "# openssl s_server did not listen"; show "$D/ss.out"; false; }
	for bio in 0 1; do
		st=0 t0=$(date +%s%N)
		KTLS_SHIM_CUSTOM_BIO=$bio shimmed "$RA/bin/micropython" "$BATS_TEST_DIRNAME/realapps/fetch.py" \
			127.0.0.1 "$PORT" /small "$CERTS/ca.crt" "$D/mp.body" - 1 >"$D/mp.$bio" 2>&1 || st=$?
		ms+=($((($(date +%s%N) - t0) / 1000000)))
		echo "$st" >>"$D/mp.$bio"
		[ "$bio" = 1 ] || { mkdir "$D/off" && mv "$D/shim.log" "$D/off/"; }
	done
	exec 8>&-
	counters_delta
	diff "$D/mp.0" "$D/mp.1" || { show "$D/off/shim.log" "$D/shim.log"; false; }
	grep -q '^OSError' "$D/mp.1" && [ "$(tail -n 1 "$D/mp.1")" != 0 ] || { show "$D/mp.1"; false; }
	# (each waited for its timeout: an immediate error would not be the same behaviour)
	[ "${ms[0]}" -ge 1000 ] && [ "${ms[1]}" -ge 1000 ] || { echo "# runs took ${ms[*]} ms, want >= 1000 each"; false; }
	D=$D/off expect_bio_fallback " role=client " 1 1.3 "offload turned off"
	HOST_OK=1 expect_bio_fallback " role=client " 1 1.3 "its socket can time out or not block"
	expect_counters 0
	figures "micropython's read after 1 s of silence, custom BIOs off then on: $(grep '^OSError' "$D/mp.1"), exit $(tail -n 1 "$D/mp.1"), after ${ms[0]} and ${ms[1]} ms"
}

# The server: tests/realapps/serve.py takes one curl request (a 24 MiB body) and answers with
# www/$BIG on the same connection.
micropython_server_case() {
	local tls=$1 try pid='' st=0 vers=(--tlsv1.3)
	[ "$tls" = 1.3 ] || vers=(--tlsv1.2 --tls-max 1.2)
	for try in 1 2 3 4 5; do
		PORT=$(free_port)
		shimmed "$RA/bin/micropython" "$BATS_TEST_DIRNAME/realapps/serve.py" "$PORT" \
			"$CERTS/server-rsa.crt" "$CERTS/server-rsa.key" "$D/up" "$RA/www/$BIG" >"$D/mp.out" 2>&1 &
		pid=$!
		_PIDS+=("$pid")
		listening "$pid" "$PORT" && break
		pid=''
		grep -qs 'EADDRINUSE' "$D/mp.out" || break
	done
	[ -n "$pid" ] || { echo "# serve.py did not listen"; show "$D/mp.out"; false; }
	# (no "Expect: 100-continue": serve.py answers once, after the body)
	"${CURL[@]}" --fail "${vers[@]}" --data-binary "@$RA/www/slow" -H 'Expect:' \
		-H 'Content-Type: application/octet-stream' "https://127.0.0.1:$PORT/up" -o "$D/resp" \
		2>"$D/curl.err" || { show "$D/curl.err" "$D/mp.out" "$D/shim.log"; false; }
	wait "$pid" || st=$?
	[ "$st" -eq 0 ] || { echo "# serve.py exit $st"; show "$D/mp.out" "$D/shim.log"; false; }
	cmp "$D/up" "$RA/www/slow"
	same_as "$D/resp" "$BIG"
	counters_delta
	expect_conns " role=server " 1 "$tls"
	expect_counters 1
	figures "TLS $tls: micropython server read $(size_of slow) and sent $(size_of "$BIG") bytes; $(grep -F " role=server " "$D/shim.log" | cut -d' ' -f2-)"
}

@test "MicroPython tls server (custom BIO) to curl TLS 1.3: upload and download, byte-exact, offloaded" {
	micropython_server_case 1.3
}

@test "MicroPython tls server (custom BIO) to curl TLS 1.2: upload and download, byte-exact, offloaded" {
	micropython_server_case 1.2
}

# ---- libgit2 ----

# git_repo NAME: $D/git/repo.git, a bare repository lighttpd serves (pushes allowed), whose branch
# main holds one commit with www/NAME as `data`. Written without compression (random bytes do not
# shrink) and without a work tree: git's own time in User-Mode Linux is not what is under test.
git_repo() {
	local r=$D/git/repo.git blob tree commit
	git init -q --bare -b main "$r"
	git -C "$r" config http.receivepack true
	git -C "$r" config core.compression 0
	blob=$(git -C "$r" hash-object -w "$RA/www/$1")
	tree=$(printf '100644 blob %s\tdata\n' "$blob" | git -C "$r" mktree)
	commit=$(git -C "$r" -c user.name=test -c user.email=test@localhost commit-tree -m data "$tree")
	git -C "$r" update-ref refs/heads/main "$commit"
}

# git_case TLS TIMEOUT_MS [CLONED PUSHED]: git-client clones the repository over HTTPS from
# lighttpd, checks www/CLONED out, commits www/PUSHED on top with the host's git and pushes it
# back; each is one connection. Both are www/slow (24 MiB) by default, www/mid with
# KTLS_TEST_QUICK=1. TIMEOUT_MS > 0: libgit2's server timeout (see the cases). Leaves the
# figures in GIT_FIGURES.
git_case() {
	local tls=$1 timeout=$2 size=slow st=0 t0 t_clone t_push
	[ -z "${KTLS_TEST_QUICK:-}" ] || size=mid
	local cloned=${3:-$size} pushed=${4:-$size}
	git_repo "$cloned"
	CONF_MORE=lighttpd-git.conf start_lighttpd "$tls"
	t0=$SECONDS
	shimmed "$RA/bin/git-client" "$CERTS/ca.crt" "$timeout" clone "https://127.0.0.1:$PORT/git/repo.git" \
		"$D/clone" >"$D/clone.out" 2>&1 || st=$?
	[ "$st" -eq 0 ] || { echo "# git-client clone exit $st"; show "$D/clone.out" "$D/lighttpd.error.log" "$D/shim.log"; false; }
	t_clone=$((SECONDS - t0)) t_push=$SECONDS
	same_as "$D/clone/data" "$cloned"
	cp "$RA/www/$pushed" "$D/clone/up"
	git -C "$D/clone" add up
	git -C "$D/clone" -c user.name=test -c user.email=test@localhost commit -q -m up
	shimmed "$RA/bin/git-client" "$CERTS/ca.crt" "$timeout" push "$D/clone" refs/heads/main:refs/heads/main \
		>"$D/push.out" 2>&1 || st=$?
	[ "$st" -eq 0 ] || { echo "# git-client push exit $st"; show "$D/push.out" "$D/lighttpd.error.log" "$D/shim.log"; false; }
	t_push=$((SECONDS - t_push))
	git -C "$D/git/repo.git" cat-file blob main:up | cmp - "$RA/www/$pushed"
	[ "$(git -C "$D/git/repo.git" rev-parse main)" = "$(git -C "$D/clone" rev-parse HEAD)" ]
	stop_lighttpd
	expect_conns "ktlsshim[$LPID]: " 2 "$tls"
	GIT_FIGURES="TLS $tls: cloned $(size_of "$cloned") bytes in $t_clone s, pushed $(size_of "$pushed") in $t_push s; $(grep -F " role=client " "$D/shim.log" | head -n 1 | sed 's/.* version=/version=/; s/ tx=.*//'); clone, push: $(sed -n 's/.* role=client .* \(tx=.*\)/\1/p' "$D/shim.log" | paste -sd,)"
}

@test "libgit2 clone and push over HTTPS (custom BIO) to lighttpd + git-http-backend, TLS 1.3: offloaded" {
	git_case 1.3 0
	expect_conns " role=client " 2 1.3
	expect_counters 4
	figures "$GIT_FIGURES"
}

@test "libgit2 clone and push over HTTPS (custom BIO) to lighttpd + git-http-backend, TLS 1.2: offloaded" {
	git_case 1.2 0
	expect_conns " role=client " 2 1.2
	expect_counters 4
	figures "$GIT_FIGURES"
}

# GIT_OPT_SET_SERVER_TIMEOUT makes libgit2 put the socket in non-blocking mode and, on EAGAIN,
# poll() with that timeout inside its BIO callbacks. After a hand-off Mbed TLS's answer on that
# socket would be WANT_READ, which libgit2 takes for an error: the connection must stay in Mbed
# TLS, with its reason, whatever the handshake's timing (its poll seen, its retry after EAGAIN
# seen, or neither and only the socket's mode). Small transfers: the outcome is decided by the
# handshake.
@test "libgit2 with a server timeout (its BIO polls on a non-blocking socket): byte-exact, stays in Mbed TLS" {
	git_case 1.3 10000 mid mid
	HOST_OK=1 expect_bio_fallback " role=client " 2 1.3 \
		"waits with its own timeout|answers a would-block its own way|its socket can time out or not block"
	expect_counters 2
	figures "$GIT_FIGURES"
}

# The same, each handshake flight of the client answered before it reads (tests/realapps/slow-send.c
# waits 300 ms after each of its first 4 sends: TLS 1.2's flights are ClientHello, then
# ClientKeyExchange, ChangeCipherSpec, Finished): libgit2 never gets EAGAIN, so never polls, until
# the handshake is over. Only the socket's mode says that its BIO would wait where Mbed TLS alone
# would return WANT_READ.
slow_send_case() {
	PRELOAD="$RA/libslow-send.so:$SHIM" SLOW_SEND_COUNT=4 SLOW_SEND_MS=300 git_case "$1" 10000 mid mid
	HOST_OK=1 expect_bio_fallback " role=client " 2 "$1" "its socket can time out or not block"
	expect_counters 2
	figures "$GIT_FIGURES"
}

@test "libgit2 with a server timeout, its handshake never waiting (non-blocking socket, no poll yet), TLS 1.3: stays in Mbed TLS" {
	slow_send_case 1.3
}

@test "libgit2 with a server timeout, its handshake never waiting (non-blocking socket, no poll yet), TLS 1.2: stays in Mbed TLS" {
	slow_send_case 1.2
}

# ---- nng ----

@test "nngcat req/rep over tls+tcp, both ends shimmed: byte-exact messages, stays in Mbed TLS (buffering BIO)" {
	head -c 300000 /dev/urandom >"$D/request"
	head -c 200000 /dev/urandom >"$D/reply"
	local try rpid='' n=3 i st
	for try in 1 2 3 4 5; do
		PORT=$(free_port)
		shimmed "$RA/bin/nngcat" --rep --listen "tls+tcp://127.0.0.1:$PORT" \
			--cert "$CERTS/server-rsa.crt" --key "$CERTS/server-rsa.key" --raw --count "$n" \
			--file "$D/reply" >"$D/rep.out" 2>"$D/rep.err" &
		rpid=$!
		_PIDS+=("$rpid")
		listening "$rpid" "$PORT" && break
		rpid=''
		grep -qs 'in use' "$D/rep.err" || break
	done
	[ -n "$rpid" ] || { echo "# nngcat --rep did not listen"; show "$D/rep.err"; false; }
	for ((i = 0; i < n; i++)); do
		st=0
		shimmed "$RA/bin/nngcat" --req --dial "tls+tcp://localhost:$PORT" \
			--cacert "$CERTS/ca.crt" --raw --file "$D/request" >"$D/req.$i.out" 2>"$D/req.$i.err" || st=$?
		[ "$st" -eq 0 ] || { echo "# nngcat --req exit $st"; show "$D/req.$i.err" "$D/rep.err"; false; }
		cmp "$D/req.$i.out" "$D/reply"
	done
	st=0
	wait "$rpid" || st=$?
	[ "$st" -eq 0 ] || { echo "# nngcat --rep exit $st"; show "$D/rep.err"; false; }
	# The replier printed each request it got, back to back.
	cat "$D/request" "$D/request" "$D/request" | cmp - "$D/rep.out"
	counters_delta
	# nng's callbacks copy from and into its own buffers, which its asynchronous I/O fills and
	# drains: nothing to prove, on any kernel. Which sign the proof meets first depends on where
	# that I/O ran: on another thread (no socket call inside the BIO), or started inline by the
	# callback, leaving what it read in nng's buffer (read ahead).
	expect_bio_fallback " role=server " "$n" 1.3 "no socket call|read ahead"
	expect_bio_fallback " role=client " "$n" 1.3 "no socket call|read ahead"
	# one line per process on the client side: each nngcat --req made one connection
	[ "$(grep -F " role=client " "$D/shim.log" | cut -d: -f1 | sort -u | wc -l)" -eq "$n" ]
	expect_counters 0
	figures "$n exchanges of 300000 + 200000 bytes; $(grep -F " role=server " "$D/shim.log" | head -n 1 | cut -d' ' -f2-)"
}
