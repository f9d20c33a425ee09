#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# The operator's controls: every KTLS_SHIM_* variable and its effect, every bad value, the log
# (levels, no secrets, many writers), STRICT, STATS, tools/ktls-run, and `make install` with its
# pkg-config file. Like offload.bats it runs twice (tools/run-tests): inside tools/ktls-vm with
# KTLS_EXPECT=kernel, where /proc/net/tls_stat must move exactly as each setting says, and on the
# host (no kTLS) with KTLS_EXPECT=user, where everything stays in user space and the shim says why.
#
# Starting a process costs a tenth of a second in User-Mode Linux, so the transfers are small and
# the checks use shell builtins where they can (count, only, nap, kstat below).

# shellcheck disable=SC2030,SC2031,SC2034 # each test is a subshell; lib.bash reads APP_PRELOAD
load lib

setup_file() {
	export KTLS_EXPECT=${KTLS_EXPECT:-user}
	# The expectation must match what the kernel really can do, or the suite proves nothing.
	local can=0
	"$ROOT/build/tools/ktls-probe" >/dev/null && can=1
	if [ "$can" != "$([ "$KTLS_EXPECT" = kernel ] && echo 1 || echo 0)" ]; then
		echo "# KTLS_EXPECT=$KTLS_EXPECT, but ktls-probe says this kernel $([ $can = 1 ] && echo can || echo cannot) offload"
		return 1
	fi
	[ -f "$CERTS/complete" ] || "$ROOT/tests/apps/gen-certs"
	PRELOAD=$(shim_preload)
	export PRELOAD
	mkfifo "$BATS_FILE_TMPDIR/nap"
}

setup() {
	LOG=$BATS_TEST_TMPDIR/shim.log
	exec {NAP}<>"$BATS_FILE_TMPDIR/nap"
}

teardown() {
	lib_teardown
}

kernel() { [ "$KTLS_EXPECT" = kernel ]; }

# pick KERNEL HOST: REPLY is KERNEL in the kTLS kernel, HOST on the host.
pick() {
	if kernel; then REPLY=$1; else REPLY=$2; fi
}

# nap SECONDS: sleeps without a process (a read with a timeout on a FIFO nobody writes to).
nap() {
	read -r -t "$1" -u "$NAP" _ || true
}

# The line the shim writes for each connection at KTLS_SHIM_LOG=info (the apps' BIO is a socket, so
# the fd is never -1); the per-direction line at debug; the STATS summary.
INFO_RE='^ktlsshim\[[0-9]+\]: fd=[0-9]+ role=(server|client) version=TLSv1\.[23] suite=[A-Z0-9-]+ tx=(kernel|user\([^()]+\)) rx=(kernel|user\([^()]+\))$'
SEQ_RE='^ktlsshim\[[0-9]+\]: fd=[0-9]+ (tx|rx) seq=[0-9]+$'
STATS_RE='^ktlsshim\[[0-9]+\]: stats: connections=[0-9]+ tx_kernel=[0-9]+ rx_kernel=[0-9]+( fallbacks: [^=,]+=[0-9]+(,[^=,]+=[0-9]+)*)?$'
KERNEL_BOTH="tx=kernel rx=kernel"
NO_KTLS="tx=user(kernel has no kTLS) rx=user(kernel has no kTLS)"

# count [-E] TEXT FILE: N = the lines of FILE that contain TEXT (a fixed string), or with -E that
# match the extended regular expression TEXT. 0 when FILE does not exist.
count() {
	local re=0 line
	if [ "$1" = -E ]; then
		re=1
		shift
	fi
	N=0
	[ -f "$2" ] || return 0
	while IFS= read -r line || [ -n "$line" ]; do
		if { [ $re = 1 ] && [[ $line =~ $1 ]]; } || { [ $re = 0 ] && [[ $line == *"$1"* ]]; }; then
			N=$((N + 1))
		fi
	done <"$2"
}

# only ERE FILE: every line of FILE matches ERE; the others are shown.
only() {
	local line bad=0
	while IFS= read -r line || [ -n "$line" ]; do
		if ! [[ $line =~ $1 ]]; then
			echo "# unexpected line in ${2##*/}: $line"
			bad=1
		fi
	done <"$2"
	return $bad
}

# kstat: TlsTxSw, TlsRxSw and TlsDecryptError into k_tx k_rx k_err (0 without kTLS).
kstat() {
	local k v
	k_tx=0 k_rx=0 k_err=0
	[ -r /proc/net/tls_stat ] || return 0
	while read -r k v; do
		case $k in
		TlsTxSw) k_tx=$v ;;
		TlsRxSw) k_rx=$v ;;
		TlsDecryptError) k_err=$v ;;
		esac
	done </proc/net/tls_stat
}

# launch CMD...: lib.bash's start_server for any server command (CMD prints "PORT n"), polling its
# log with builtins. Sets SERVER_LOG, SERVER_PID and PORT, for lib.bash's stop_server.
launch() {
	SERVER_LOG=$BATS_TEST_TMPDIR/server.$((_NSERVERS++)).log
	: >"$SERVER_LOG"
	"$@" >"$SERVER_LOG" 2>&1 &
	SERVER_PID=$!
	_BG_PIDS+=("$SERVER_PID")
	PORT=
	local i line
	for ((i = 0; i < 1000; i++)); do
		while IFS= read -r line; do
			if [[ $line =~ ^PORT\ ([0-9]+)$ ]]; then
				PORT=${BASH_REMATCH[1]}
				return 0
			fi
		done <"$SERVER_LOG"
		kill -0 "$SERVER_PID" 2>/dev/null || break
		nap 0.02
	done
	echo "# $* did not announce a port:"
	sed 's/^/#   /' "$SERVER_LOG"
	return 1
}

# pair WHERE ARGS...: our server (serving $SERVE connections, default 1) and client, both with ARGS
# (plus $SERVER_ARGS / $CLIENT_ARGS). WHERE (both, server, client, none) says which get the shim,
# with KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$LOG (emptied first) and then $SHIM_ENV (later words
# win). Judges nothing: sets CLIENT_STATUS, SERVER_STATUS and d_tx d_rx d_err (tls_stat deltas);
# the apps' outputs are in $CLIENT_LOG and $SERVER_LOG.
pair() {
	local where=$1 tx0 rx0 err0
	shift
	local SHIM_ENV="KTLS_SHIM_LOG=info KTLS_SHIM_LOG_FILE=$LOG ${SHIM_ENV:-}"
	: >"$LOG"
	kstat
	tx0=$k_tx rx0=$k_rx err0=$k_err
	APP_PRELOAD=
	case $where in both | server) APP_PRELOAD=$PRELOAD ;; esac
	# shellcheck disable=SC2086 # word lists
	launch app "$APPS/mbed-server" --port 0 --serve "${SERVE:-1}" "$@" ${SERVER_ARGS:-}
	APP_PRELOAD=
	case $where in both | client) APP_PRELOAD=$PRELOAD ;; esac
	# shellcheck disable=SC2086
	run_client "$@" ${CLIENT_ARGS:-}
	APP_PRELOAD=
	stop_server >/dev/null || true
	kstat
	d_tx=$((k_tx - tx0)) d_rx=$((k_rx - rx0)) d_err=$((k_err - err0))
}

show() {
	echo "# client (exit $CLIENT_STATUS):" && sed 's/^/#   /' "$CLIENT_LOG"
	echo "# server (exit $SERVER_STATUS):" && sed 's/^/#   /' "$SERVER_LOG"
	[ ! -f "$LOG" ] || { echo "# shim log:" && sed 's/^/#   /' "$LOG"; }
}

# pair_ok WHERE ARGS...: pair, and both ends must succeed.
pair_ok() {
	pair "$@"
	if [ "$CLIENT_STATUS" -ne 0 ] || [ "$SERVER_STATUS" -ne 0 ]; then
		show
		return 1
	fi
}

# counters TX RX: in the kTLS kernel TlsTxSw/TlsRxSw moved by exactly TX/RX, on the host not at
# all; never a decryption error.
counters() {
	local tx=$1 rx=$2
	kernel || tx=0 rx=0
	if [ "$d_tx" -ne "$tx" ] || [ "$d_rx" -ne "$rx" ] || [ "$d_err" -ne 0 ]; then
		echo "# expected TlsTxSw +$tx TlsRxSw +$rx TlsDecryptError +0, got +$d_tx +$d_rx +$d_err"
		show
		return 1
	fi
}

# expect_lines N TEXT [FILE]: exactly N lines of FILE (default $LOG) contain TEXT (a fixed string).
expect_lines() {
	count "$2" "${3:-$LOG}"
	if [ "$N" -ne "$1" ]; then
		echo "# expected $1 lines with '$2' in ${3:-$LOG}, got $N"
		show
		return 1
	fi
}

# no_shim_lines FILE...: no line of the shim in the FILEs (the apps' outputs).
no_shim_lines() {
	local f
	for f in "$@"; do
		count ktlsshim "$f"
		if [ "$N" -ne 0 ]; then
			echo "# unexpected shim lines in $f:"
			sed 's/^/#   /' "$f"
			return 1
		fi
	done
}

# ---- every variable's effect -----------------------------------------------------------------

@test "KTLS_SHIM_DIRECTIONS=tx / rx: only that direction moves to the kernel" {
	SHIM_ENV=KTLS_SHIM_DIRECTIONS=tx pair_ok both --tls 1.3 --up 256K --down 256K
	counters 2 0
	pick "tx=kernel rx=user(KTLS_SHIM_DIRECTIONS)" "tx=user(kernel has no kTLS) rx=user(KTLS_SHIM_DIRECTIONS)"
	expect_lines 2 "$REPLY"
	SHIM_ENV=KTLS_SHIM_DIRECTIONS=RX pair_ok both --tls 1.2 --up 256K --down 256K
	counters 0 2
	pick "tx=user(KTLS_SHIM_DIRECTIONS) rx=kernel" "tx=user(KTLS_SHIM_DIRECTIONS) rx=user(kernel has no kTLS)"
	expect_lines 2 "$REPLY"
}

@test "KTLS_SHIM_CIPHERS without the negotiated cipher: user space, with the reason" {
	SHIM_ENV=KTLS_SHIM_CIPHERS=AES-256-GCM,chacha20-poly1305,AES-128-CCM \
		pair_ok both --tls 1.3 --suite TLS1-3-AES-128-GCM-SHA256 --up 256K --down 256K
	counters 0 0
	expect_lines 2 "tx=user(cipher disabled by KTLS_SHIM_CIPHERS) rx=user(cipher disabled by KTLS_SHIM_CIPHERS)"
	only "$INFO_RE" "$LOG" # (the fd too, though the kernel was never asked)
	# The same suite with its cipher allowed (any case) is offloaded.
	SHIM_ENV=KTLS_SHIM_CIPHERS=aes-128-gcm \
		pair_ok both --tls 1.3 --suite TLS1-3-AES-128-GCM-SHA256 --up 256K --down 256K
	counters 2 2
	pick "$KERNEL_BOTH" "$NO_KTLS"
	expect_lines 2 "$REPLY"
}

@test "KTLS_SHIM_VERSIONS: a disabled version stays in user space" {
	local why="tx=user(version disabled by KTLS_SHIM_VERSIONS) rx=user(version disabled by KTLS_SHIM_VERSIONS)"
	SHIM_ENV=KTLS_SHIM_VERSIONS=1.2 pair_ok both --tls 1.3 --up 256K --down 256K
	counters 0 0
	expect_lines 2 "$why"
	SHIM_ENV=KTLS_SHIM_VERSIONS=1.3 pair_ok both --tls 1.2 --up 256K --down 256K
	counters 0 0
	expect_lines 2 "$why"
	only "$INFO_RE" "$LOG"
}

@test "KTLS_SHIM_DISABLE=1: pure pass-through (no offload, no line; STRICT and STATS ignored)" {
	SHIM_ENV="KTLS_SHIM_DISABLE=1 KTLS_SHIM_STRICT=1 KTLS_SHIM_STATS=1" \
		pair_ok both --tls 1.3 --up 256K --down 256K
	counters 0 0
	[ ! -s "$LOG" ] || { show; false; }
	no_shim_lines "$CLIENT_LOG" "$SERVER_LOG"
}

# ---- the log -------------------------------------------------------------------------------

@test "KTLS_SHIM_LOG: off prints nothing, info one line per connection" {
	# No log file: anything would be on the apps' stderr.
	SHIM_ENV="KTLS_SHIM_LOG=off KTLS_SHIM_LOG_FILE=" pair_ok both --tls 1.3 --up 64K --down 64K
	counters 2 2
	no_shim_lines "$CLIENT_LOG" "$SERVER_LOG"
	# (error, the default, is in "an empty value is the same as unset".)
	# info: exactly one line per connection and end, each the documented one (on the host, the
	# shim stops watching new connections after the first: they are still named by their fd).
	SERVE=3 CLIENT_ARGS="--connections 3" SHIM_ENV=KTLS_SHIM_LOG=INFO \
		pair_ok both --tls 1.3 --up 64K --down 64K
	counters 6 6
	only "$INFO_RE" "$LOG"
	count -E "$INFO_RE" "$LOG"
	[ "$N" -eq 6 ]
	[[ $(<"$CLIENT_LOG") =~ CONN\ 0\ [^$'\n']*suite=([^ ]+) ]]
	local suite=${BASH_REMATCH[1]}
	expect_lines 3 " role=server version=TLSv1.3 suite=$suite "
	expect_lines 3 " role=client version=TLSv1.3 suite=$suite "
	pick "$KERNEL_BOTH" "$NO_KTLS"
	expect_lines 6 " $REPLY"
}

@test "KTLS_SHIM_LOG=debug: per-direction lines; no line at any level contains a secret" {
	# debug prints every line of every lower level, so it shows everything the shim can say: for
	# TLS 1.3 and 1.2 that offload (or fall back), and the error line of a STRICT failure. The
	# secrets are the apps' own key logs.
	local keys=$BATS_TEST_TMPDIR/keys out=$BATS_TEST_TMPDIR/all-output tls
	: >"$out"
	for tls in 1.3 1.2; do
		SHIM_ENV="KTLS_SHIM_LOG=Debug KTLS_SHIM_STATS=1" SERVER_ARGS="--keylog $keys" \
			CLIENT_ARGS="--keylog $keys" pair_ok both --tls "$tls" --up 64K --down 64K
		counters 2 2
		only "$INFO_RE|$SEQ_RE|$STATS_RE" "$LOG"
		count -E "$INFO_RE" "$LOG"
		[ "$N" -eq 2 ]
		count -E "$SEQ_RE" "$LOG"
		pick 4 0
		[ "$N" -eq "$REPLY" ] || { show; false; }
		count -E "$STATS_RE" "$LOG"
		[ "$N" -eq 2 ]
		cat "$LOG" "$CLIENT_LOG" "$SERVER_LOG" >>"$out"
	done
	SHIM_ENV="KTLS_SHIM_LOG=debug KTLS_SHIM_STRICT=1 KTLS_SHIM_CIPHERS=AES-128-CCM" \
		SERVER_ARGS="--keylog $keys" CLIENT_ARGS="--keylog $keys" \
		pair both --tls 1.3 --suite TLS1-3-AES-128-GCM-SHA256 --up 64K --down 64K
	[ "$CLIENT_STATUS" -ne 0 ]
	expect_lines 2 "KTLS_SHIM_STRICT: not offloaded"
	cat "$LOG" "$CLIENT_LOG" "$SERVER_LOG" >>"$out"
	# Each secret, and its first and last 8 bytes, as grep patterns.
	local -A secret=()
	local s line
	while read -r _ _ s; do
		[ -z "$s" ] || secret[$s]=1
	done <"$keys"
	# TLS 1.3: 4 traffic secrets per connection (both ends log the same); TLS 1.2: the master
	# secret. 2 + 1 + 1 connections: at least 9.
	[ "${#secret[@]}" -ge 9 ] || { echo "# only ${#secret[@]} secrets in the key logs"; false; }
	for s in "${!secret[@]}"; do
		printf '%s\n%s\n%s\n' "$s" "${s:0:16}" "${s: -16}"
	done >"$BATS_TEST_TMPDIR/patterns"
	if grep -niF -f "$BATS_TEST_TMPDIR/patterns" "$out"; then
		echo "# ^ secret material in the output"
		false
	fi
	# Nor anything that looks like key material (12 or more bytes in hex) in a shim line.
	while IFS= read -r line; do
		if [[ $line == *ktlsshim* && $line =~ [0-9a-fA-F]{24} ]]; then
			echo "# hex in a shim line: $line"
			false
		fi
	done <"$out"
}

@test "KTLS_SHIM_LOG_FILE: many processes and threads append whole lines" {
	echo "existing line" >"$LOG"
	local env="KTLS_SHIM_LOG=debug KTLS_SHIM_LOG_FILE=$LOG KTLS_SHIM_STATS=1" i pids=() rc=0
	APP_PRELOAD=$PRELOAD SHIM_ENV=$env launch app "$APPS/mbed-server" --port 0 --threads --serve 12 \
		--tls 1.3 --up 64K --down 64K
	# Three client processes at once, each with 4 threads: 12 connections at a time.
	for i in 1 2 3; do
		APP_PRELOAD=$PRELOAD SHIM_ENV=$env app "$APPS/mbed-client" --port "$PORT" --parallel 4 \
			--tls 1.3 --up 64K --down 64K >"$BATS_TEST_TMPDIR/client$i.out" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || rc=1; done
	CLIENT_STATUS=$rc
	stop_server
	[ "$rc" -eq 0 ] || { cat "$BATS_TEST_TMPDIR"/client*.out; false; }
	# The old line first, then only whole shim lines, and a newline at the end.
	local first
	read -r first <"$LOG"
	[ "$first" = "existing line" ]
	only "^existing line$|$INFO_RE|$SEQ_RE|$STATS_RE" "$LOG"
	[ -z "$(tail -c 1 "$LOG")" ]
	count -E "$INFO_RE" "$LOG"
	[ "$N" -eq 24 ]
	count -E "$SEQ_RE" "$LOG"
	pick 48 0
	[ "$N" -eq "$REPLY" ]
	count -E "$STATS_RE" "$LOG"
	[ "$N" -eq 4 ]
	# Four writers (the server and three clients), each with its own pid.
	local -A pid=()
	local line
	while IFS= read -r line; do
		if [[ $line =~ ^ktlsshim\[([0-9]+)\] ]]; then pid[${BASH_REMATCH[1]}]=1; fi
	done <"$LOG"
	[ "${#pid[@]}" -eq 4 ]
}

@test "KTLS_SHIM_LOG_FILE that cannot be opened: the lines go to stderr" {
	SHIM_ENV="KTLS_SHIM_LOG_FILE=$BATS_TEST_TMPDIR/no/such/dir/shim.log" \
		pair_ok both --tls 1.3 --up 64K --down 64K
	count -E "$INFO_RE" "$CLIENT_LOG"
	[ "$N" -eq 1 ] || { show; false; }
	count -E "$INFO_RE" "$SERVER_LOG"
	[ "$N" -eq 1 ]
}

@test "KTLS_SHIM_LOG_FILE that is a symlink: not followed, the lines go to stderr" {
	# A link planted where the log file should be must not lead the lines into another file.
	ln -s "$BATS_TEST_TMPDIR/target" "$BATS_TEST_TMPDIR/link"
	run env KTLS_SHIM_STATS=1 KTLS_SHIM_LOG_FILE="$BATS_TEST_TMPDIR/link" "$ROOT/build/tests/setuid-stand-in"
	printf '# %s\n' "${lines[@]}"
	[ "$status" -eq 0 ]
	[ ! -e "$BATS_TEST_TMPDIR/target" ]
	[[ $output == *"KTLS_SHIM_LOG_FILE not opened (Too many levels of symbolic links)"* ]]
	[[ $output == *"stats: connections=0 "* ]]
}

# setuid_dir: a new directory holding a setuid-root copy of build/tests/setuid-stand-in that the
# user nobody can run, on a filesystem that honours setuid (not mounted nosuid); its path in
# SETUID_DIR, or 1 when no candidate works.
setuid_dir() {
	local base d
	for base in /var/tmp /tmp /dev/shm "$ROOT/build"; do
		findmnt -no OPTIONS -T "$base" 2>/dev/null | grep -qw nosuid && continue
		d=$(mktemp -d "$base/ktlsshim-setuid.XXXXXX") || continue
		chmod 755 "$d"
		cp "$ROOT/build/tests/setuid-stand-in" "$d/"
		chown 0:0 "$d/setuid-stand-in" && chmod 4755 "$d/setuid-stand-in"
		if setpriv --reuid=65534 --regid=65534 --clear-groups "$d/setuid-stand-in" 2>/dev/null |
			grep -q '^AT_SECURE=1 euid=0 uid=65534 '; then
			SETUID_DIR=$d
			return 0
		fi
		rm -rf "$d"
	done
	return 1
}

# The shim loaded into every program (/etc/ld.so.preload) is loaded into setuid programs too,
# whose environment is the caller's. The stand-in links the shim (the loader loads it as it loads
# /etc/ld.so.preload; LD_PRELOAD would be ignored there), and a setuid-root copy of it is run as
# nobody with KTLS_SHIM_* set: the log file must not be created in root's private directory, no
# bad value is even read. The same program run normally must honour the same variables.
@test "stderr closed and taken by the app's own TCP socket: no log line goes into the connection" {
	# A daemon that closed its stderr gets its next socket on descriptor 2, where the log goes by
	# default: the client here runs so (its TLS connection on fd 2), logging at info.
	mkdir "$BATS_TEST_TMPDIR/apps"
	ln -s "$APPS/mbed-server" "$BATS_TEST_TMPDIR/apps/mbed-server"
	printf '#!/bin/sh\nexec "%s" "$@" 2>&-\n' "$APPS/mbed-client" >"$BATS_TEST_TMPDIR/apps/mbed-client"
	chmod +x "$BATS_TEST_TMPDIR/apps/mbed-client"
	APPS=$BATS_TEST_TMPDIR/apps SHIM_ENV="KTLS_SHIM_LOG_FILE=" pair_ok client --tls 1.3 --up 64K --down 64K
	counters 1 1
	[[ $(<"$CLIENT_LOG") != *ktlsshim* ]]
	[[ $(<"$SERVER_LOG") != *ktlsshim* ]]
}

@test "setuid program (AT_SECURE): no KTLS_SHIM_* variable is read, no file it names is opened" {
	[ "$(id -u)" -eq 0 ] || skip "needs root, to install a setuid-root copy of the stand-in"
	command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"
	setuid_dir || skip "no filesystem here runs a setuid program for nobody (all nosuid?)"
	local d=$SETUID_DIR
	mkdir -m 700 "$d/private" # root's own, as /root is
	run setpriv --reuid=65534 --regid=65534 --clear-groups env KTLS_SHIM_STATS=1 KTLS_SHIM_LOG=debug \
		KTLS_SHIM_LOG_FILE="$d/private/x" KTLS_SHIM_DIRECTIONS=bogus "$d/setuid-stand-in"
	printf '# setuid, as nobody: %s\n' "${lines[@]}"
	local secure_status=$status secure_out=$output
	# The control: not setuid, the same variables are read and the file is written.
	run env KTLS_SHIM_STATS=1 KTLS_SHIM_LOG_FILE="$d/private/y" KTLS_SHIM_DIRECTIONS=bogus \
		"$ROOT/build/tests/setuid-stand-in"
	printf '# plain, as root: %s\n' "${lines[@]}"
	local made_y=0
	grep -q 'stats: connections=0 ' "$d/private/y" && made_y=1
	local made_x=0
	[ ! -e "$d/private/x" ] || made_x=1
	rm -rf "$d"
	[ "$secure_status" -eq 0 ]
	[[ $secure_out == *'AT_SECURE=1 euid=0 uid=65534 '* ]]
	[ "$made_x" -eq 0 ] || { echo "# the shim created root's file for nobody"; false; }
	[[ $secure_out != *KTLS_SHIM_DIRECTIONS* ]] # not even read: no complaint about its value
	[ "$made_y" -eq 1 ]
	[[ $output == *"KTLS_SHIM_DIRECTIONS='bogus' is not valid"* ]]
}

# ---- STRICT --------------------------------------------------------------------------------

@test "KTLS_SHIM_STRICT=1: not offloaded fails with -0x7080 and a fatal alert to the peer" {
	# A client whose cipher is excluded fails in every kernel; the plain server gets the alert.
	SHIM_ENV="KTLS_SHIM_STRICT=1 KTLS_SHIM_CIPHERS=AES-256-GCM" \
		pair client --tls 1.3 --suite TLS1-3-AES-128-GCM-SHA256 --up 64K --down 64K
	[ "$CLIENT_STATUS" -ne 0 ] || { show; false; }
	expect_lines 1 "ERROR conn=0 handshake: -0x7080 " "$CLIENT_LOG"
	expect_lines 1 "-0x7780 SSL - A fatal alert message was received from our peer" "$SERVER_LOG"
	expect_lines 1 "KTLS_SHIM_STRICT: not offloaded (tx cipher disabled by KTLS_SHIM_CIPHERS, rx cipher disabled by KTLS_SHIM_CIPHERS); failing the connection"
	counters 0 0

	# Both ends strict, everything allowed: works where the kernel carries it, fails on the host.
	SHIM_ENV="KTLS_SHIM_STRICT=1" pair both --tls 1.3 --up 256K --down 256K
	if kernel; then
		[ "$CLIENT_STATUS" -eq 0 ] && [ "$SERVER_STATUS" -eq 0 ] || { show; false; }
		counters 2 2
		expect_lines 0 KTLS_SHIM_STRICT
	else
		[ "$CLIENT_STATUS" -ne 0 ] && [ "$SERVER_STATUS" -ne 0 ] || { show; false; }
		expect_lines 1 "ERROR conn=0 handshake: -0x7080 " "$CLIENT_LOG"
		expect_lines 2 "KTLS_SHIM_STRICT: not offloaded (tx kernel has no kTLS, rx kernel has no kTLS)"
	fi

	# STRICT asks only for the directions KTLS_SHIM_DIRECTIONS allows.
	SHIM_ENV="KTLS_SHIM_STRICT=1 KTLS_SHIM_DIRECTIONS=tx" pair client --tls 1.2 --up 64K --down 64K
	if kernel; then
		[ "$CLIENT_STATUS" -eq 0 ] || { show; false; }
		counters 1 0
	else
		[ "$CLIENT_STATUS" -ne 0 ] || { show; false; }
		expect_lines 1 "-0x7780" "$SERVER_LOG"
	fi
}

@test "KTLS_SHIM_STRICT=1: the peer's alert is internal_error (openssl s_server)" {
	start_peer ossl openssl s_server -accept 127.0.0.1:0 -naccept 1 -cert "$CERTS/server-rsa.crt" \
		-key "$CERTS/server-rsa.key"
	PORT=$PEER_PORT
	APP_PRELOAD=$PRELOAD SHIM_ENV="KTLS_SHIM_STRICT=1 KTLS_SHIM_VERSIONS=1.2" run_client --tls 1.3 --up 16K
	[ "$status" -ne 0 ]
	expect_lines 1 "ERROR conn=0 handshake: -0x7080 " "$CLIENT_LOG"
	wait_peer || true
	expect_lines 1 "alert internal error" "$BATS_TEST_TMPDIR/ossl.err" ||
		{ sed 's/^/#   /' "$BATS_TEST_TMPDIR/ossl.err" "$BATS_TEST_TMPDIR/ossl.out"; false; }
}

# ---- STATS ---------------------------------------------------------------------------------

@test "KTLS_SHIM_STATS=1: the exact summary line at exit, whatever the log level" {
	# Server: into the log file, last.
	SERVE=3 CLIENT_ARGS="--connections 3" SHIM_ENV="KTLS_SHIM_STATS=1" \
		pair_ok server --tls 1.3 --up 64K --down 64K
	local line last
	while IFS= read -r line; do last=$line; done <"$LOG"
	pick "connections=3 tx_kernel=3 rx_kernel=3" \
		"connections=3 tx_kernel=0 rx_kernel=0 fallbacks: kernel has no kTLS=3"
	[[ $last =~ ^ktlsshim\[[0-9]+\]:\ stats:\ (.*)$ && ${BASH_REMATCH[1]} == "$REPLY" ]] ||
		{ echo "# want '... stats: $REPLY' last"; show; false; }
	expect_lines 1 stats:
	# Client: on stderr, with the log off; two reasons.
	SERVE=2 CLIENT_ARGS="--connections 2" \
		SHIM_ENV="KTLS_SHIM_STATS=1 KTLS_SHIM_LOG=off KTLS_SHIM_LOG_FILE= KTLS_SHIM_DIRECTIONS=tx" \
		pair_ok client --tls 1.2 --up 64K --down 64K
	pick "connections=2 tx_kernel=2 rx_kernel=0 fallbacks: KTLS_SHIM_DIRECTIONS=2" \
		"connections=2 tx_kernel=0 rx_kernel=0 fallbacks: kernel has no kTLS=2,KTLS_SHIM_DIRECTIONS=1"
	count ktlsshim "$CLIENT_LOG"
	[ "$N" -eq 1 ] || { show; false; }
	count -E "^ktlsshim\[[0-9]+\]: stats: $REPLY\$" "$CLIENT_LOG"
	[ "$N" -eq 1 ] || { echo "# want '... stats: $REPLY'"; show; false; }
}

# ---- bad values ------------------------------------------------------------------------------

# A bad value of each variable, what the line says is expected, and the default used.
BAD_VALUES=(
	"KTLS_SHIM_DISABLE=maybe|0 or 1|0"
	"KTLS_SHIM_DIRECTIONS=sideways|tx, rx or both|both"
	"KTLS_SHIM_CIPHERS=AES-128-CCM-8|a comma list of AES-128-GCM, AES-256-GCM, AES-128-CCM, CHACHA20-POLY1305|all four"
	"KTLS_SHIM_VERSIONS=1.2,1.4|1.2, 1.3 or 1.2,1.3|1.2,1.3"
	"KTLS_SHIM_LOG=loud|off, error, info or debug|error"
	"KTLS_SHIM_STRICT=very|0 or 1|0"
	"KTLS_SHIM_STATS=please|0 or 1|0"
)

# bad_line ENTRY: the line the shim must print for a BAD_VALUES entry, in REPLY.
bad_line() {
	local assign=${1%%|*} rest=${1#*|}
	REPLY="ktlsshim: ${assign%%=*}='${assign#*=}' is not valid (expected ${rest%|*}); using ${rest##*|}"
}

@test "every bad value: exactly one clear line on stderr at load, the program still runs" {
	local b out
	for b in "${BAD_VALUES[@]}"; do
		bad_line "$b"
		out=$(env LD_PRELOAD="$PRELOAD" KTLS_SHIM_LOG_FILE="$LOG" "${b%%|*}" \
			"$APPS/mbed-client" --help 2>&1 >/dev/null) || { echo "# ${b%%|*}: exit $?"; false; }
		[ "$out" = "$REPLY" ] || { echo "# want: $REPLY"; echo "# got:  $out"; false; }
	done
}

@test "all bad values at once: one line each, the defaults work" {
	local b env=""
	for b in "${BAD_VALUES[@]}"; do env+=" ${b%%|*}"; done
	SHIM_ENV="$env" pair_ok both --tls 1.3 --up 256K --down 256K
	counters 2 2
	for b in "${BAD_VALUES[@]}"; do
		bad_line "$b"
		expect_lines 1 "$REPLY" "$CLIENT_LOG"
		expect_lines 1 "$REPLY" "$SERVER_LOG"
	done
	expect_lines 7 ktlsshim "$CLIENT_LOG"
	expect_lines 7 ktlsshim "$SERVER_LOG"
	# KTLS_SHIM_LOG=loud means error: no info line in the log file.
	[ ! -s "$LOG" ] || { show; false; }
}

@test "an empty value is the same as unset; the default log level says nothing about a good connection" {
	SHIM_ENV="KTLS_SHIM_DISABLE= KTLS_SHIM_DIRECTIONS= KTLS_SHIM_CIPHERS= KTLS_SHIM_VERSIONS= KTLS_SHIM_LOG= KTLS_SHIM_LOG_FILE= KTLS_SHIM_STRICT= KTLS_SHIM_STATS=" \
		pair_ok both --tls 1.2 --up 64K --down 64K
	counters 2 2
	no_shim_lines "$CLIENT_LOG" "$SERVER_LOG"
	[ ! -s "$LOG" ]
}

# ---- tools/ktls-run ------------------------------------------------------------------------

@test "ktls-run: --help has every option and README's environment table; usage errors; --check" {
	run "$ROOT/tools/ktls-run" --help
	[ "$status" -eq 0 ]
	local help=$'\n'$output$'\n' opt row var values in=0 rows=0 bad
	for opt in --tx-only --rx-only --log --log-file --strict --stats --check --help; do
		[[ $help == *$'\n  '"$opt "* ]] || { echo "# --help lacks $opt"; false; }
	done
	# Each row of README's Environment table: the variable, then its values (default first).
	while IFS= read -r row; do
		case $row in
		'### Environment'*) in=1 ;;
		'## '*) in=0 ;;
		'| `KTLS_SHIM_'*)
			[ "$in" = 1 ] || continue
			IFS='|' read -r _ var values _ <<<"$row"
			var=${var//[\` ]/}
			values=${values//\`/}
			values=${values#"${values%%[! ]*}"}
			values=${values%"${values##*[! ]}"}
			[[ $help =~ $'\n  '"$var"\ +"$values"($'\n'|\ ) ]] ||
				{ echo "# --help's row for $var does not start with '$values'"; false; }
			rows=$((rows + 1))
			;;
		esac
	done <"$ROOT/README.md"
	[ "$rows" -eq 11 ]
	for bad in "--bogus -- true" "--log" "--tx-only --rx-only -- true" ""; do
		# shellcheck disable=SC2086 # the words of each case
		run "$ROOT/tools/ktls-run" $bad
		[ "$status" -eq 2 ] || { echo "# '$bad' gave $status"; false; }
		[[ $output == *"usage: ktls-run "* ]]
	done
	# --check alone: one line, exit 0 only where the kernel can offload.
	run "$ROOT/tools/ktls-run" --check
	pick 0 1
	[ "$status" -eq "$REPLY" ]
	[ "${#lines[@]}" -eq 1 ]
	pick "can offload" "cannot offload"
	[[ $output == "ktls-run: kernel "*" $REPLY TLS "* ]]
	# With a command: the line on stderr, then the command runs (its status comes back).
	run "$ROOT/tools/ktls-run" --check -- sh -c 'echo ran; exit 3'
	[ "$status" -eq 3 ]
	[[ ${lines[0]} == "ktls-run: kernel "*" $REPLY TLS "* ]]
	[ "${lines[1]}" = ran ]
}

@test "ktls-run runs the apps: --check --tx-only --stats --log, an existing LD_PRELOAD kept" {
	local fault=$ROOT/build/tests/librefuse-sockopt.so lib=$ROOT/build/libktlsshim.so tx0 rx0 err0
	[ -f "$fault" ]
	# The server through ktls-run: the check first, then TX only, stats, info into the log.
	launch timeout "$APP_TIMEOUT" "$ROOT/tools/ktls-run" --check --tx-only --stats --log info \
		--log-file "$LOG" -- "$APPS/mbed-server" --port 0 --serve 1 --tls 1.3 --up 256K --down 256K
	pick "can offload" "cannot offload"
	expect_lines 1 "ktls-run: kernel" "$SERVER_LOG"
	expect_lines 1 " $REPLY TLS " "$SERVER_LOG"
	# (after the probe: its own kTLS sockets count in tls_stat)
	kstat
	tx0=$k_tx rx0=$k_rx err0=$k_err
	# The client: a fault library already preloaded (it refuses TLS_RX), which ktls-run keeps.
	CLIENT_LOG=$BATS_TEST_TMPDIR/client.log
	run env LD_PRELOAD="$fault" KTLS_TEST_REFUSE=rx timeout "$APP_TIMEOUT" "$ROOT/tools/ktls-run" \
		--log=info --log-file "$LOG" -- "$APPS/mbed-client" --port "$PORT" --tls 1.3 \
		--up 256K --down 256K
	CLIENT_STATUS=$status
	printf '%s\n' "$output" >"$CLIENT_LOG"
	stop_server
	[ "$CLIENT_STATUS" -eq 0 ] || { show; false; }
	kstat
	d_tx=$((k_tx - tx0)) d_rx=$((k_rx - rx0)) d_err=$((k_err - err0))
	counters 2 0
	if kernel; then
		expect_lines 1 "role=server version=TLSv1.3"
		expect_lines 1 "tx=kernel rx=user(KTLS_SHIM_DIRECTIONS)"
		expect_lines 1 "tx=kernel rx=user(kernel refused TLS_RX)"
		REPLY="connections=1 tx_kernel=1 rx_kernel=0 fallbacks: KTLS_SHIM_DIRECTIONS=1"
	else
		expect_lines 1 "tx=user(kernel has no kTLS) rx=user(KTLS_SHIM_DIRECTIONS)"
		expect_lines 1 "role=client version=TLSv1.3"
		REPLY="connections=1 tx_kernel=0 rx_kernel=0 fallbacks: kernel has no kTLS=1,KTLS_SHIM_DIRECTIONS=1"
	fi
	expect_lines 1 "stats:"
	count -E "^ktlsshim\[[0-9]+\]: stats: $REPLY\$" "$LOG"
	[ "$N" -eq 1 ] || { echo "# want '... stats: $REPLY'"; show; false; }
	# What a command sees: the shim first, the existing preload kept, the variables set.
	run env LD_PRELOAD="$fault" "$ROOT/tools/ktls-run" --rx-only --strict --log debug -- env
	[ "$status" -eq 0 ]
	output=$'\n'$output$'\n'
	[[ $output == *$'\n'"LD_PRELOAD=$lib:$fault"$'\n'* ]]
	[[ $output == *$'\n'"KTLS_SHIM_DIRECTIONS=rx"$'\n'* ]]
	[[ $output == *$'\n'"KTLS_SHIM_STRICT=1"$'\n'* ]]
	[[ $output == *$'\n'"KTLS_SHIM_LOG=debug"$'\n'* ]]
	# Not twice.
	run env LD_PRELOAD="$lib" "$ROOT/tools/ktls-run" -- env
	[[ $'\n'$output$'\n' == *$'\n'"LD_PRELOAD=$lib"$'\n'* ]]
}

# ---- make install and pkg-config -------------------------------------------------------------

@test "make install: files, pkg-config, a program built against the installed header runs" {
	local p=$BATS_TEST_TMPDIR/prefix t=$BATS_TEST_TMPDIR/t
	run make -s --no-print-directory -C "$ROOT" install PREFIX="$p"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	# One test a line: bats (set -e) ignores a failure before the last command of an && list.
	[ -x "$p/lib/libktlsshim.so" ]
	[ -f "$p/include/ktlsshim.h" ]
	[ -f "$p/lib/pkgconfig/ktlsshim.pc" ]
	[ -x "$p/bin/ktls-run" ]
	[ -x "$p/bin/ktls-probe" ]
	[ -f "$p/share/man/man1/ktls-run.1" ]
	[ -f "$p/share/man/man3/ktlsshim.3" ]
	[ -f "$p/share/man/man7/ktlsshim.7" ]
	run env PKG_CONFIG_PATH="$p/lib/pkgconfig" pkg-config --cflags --libs ktlsshim
	[ "$status" -eq 0 ]
	local flags=$output
	[[ " $flags " == *" -I$p/include "* ]]
	# -lktlsshim before Mbed TLS: its wrappers must come first.
	[[ " $flags " == *" -lktlsshim "*" -lmbedtls "* ]]
	cat >"$t.c" <<-'EOF'
		#include <stdio.h>
		#include <ktlsshim.h>

		int main(void)
		{
			mbedtls_ssl_context ssl;
			mbedtls_ssl_init(&ssl);
			const char *s = ktlsshim_strerror(KTLSSHIM_ERR_BUSY);
			mbedtls_ssl_free(&ssl);
			printf("%s\n", s ? s : "(null)");
			return s && *s ? 0 : 1;
		}
	EOF
	# shellcheck disable=SC2086 # the flags are words
	gcc -Wall -Werror -o "$t" "$t.c" $flags
	run "$t"
	[ "$status" -eq 0 ]
	[ -n "$output" ]
	# It loads the installed library, which comes before Mbed TLS in its own list of libraries.
	run env LD_TRACE_LOADED_OBJECTS=1 "$t"
	[[ $output == *"libktlsshim.so => $p/lib/libktlsshim.so "* ]]
	[[ $output == *libktlsshim.so*libmbedtls.so* ]]
	# The installed ktls-run finds the installed library and probe.
	run "$p/bin/ktls-run" -- env
	[[ $'\n'$output$'\n' == *$'\n'"LD_PRELOAD=$p/lib/libktlsshim.so"$'\n'* ]]
	run "$p/bin/ktls-run" --check
	pick 0 1
	[ "$status" -eq "$REPLY" ]
	# DESTDIR stages without changing the paths inside (nothing kernel-specific: host run only).
	kernel && return 0
	run make -s --no-print-directory -C "$ROOT" install PREFIX=/opt/ktlsshim DESTDIR="$BATS_TEST_TMPDIR/stage"
	[ "$status" -eq 0 ]
	expect_lines 1 "prefix=/opt/ktlsshim" "$BATS_TEST_TMPDIR/stage/opt/ktlsshim/lib/pkgconfig/ktlsshim.pc"
	[ -f "$BATS_TEST_TMPDIR/stage/opt/ktlsshim/lib/libktlsshim.so" ]
}
