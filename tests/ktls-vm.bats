#!/usr/bin/env bats
# SPDX-License-Identifier: Apache-2.0
# tools/ktls-vm (the User-Mode Linux runner) and build/tools/ktls-probe, on the default kernel (6.1)
# on --kernel latest (build/uml-latest) and --kernel 5.10 (build/uml-5.10). Each VM boot costs ~2-4 s, so the checks share boots
# where they can.

bats_require_minimum_version 1.5.0

setup_file() {
	cd "$BATS_TEST_DIRNAME/.."
	[ -x build/tools/ktls-probe ] || make -s build/tools/ktls-probe >&2
	# Fetch the latest kernel up front so no test sees its one progress line on stderr (if this
	# fails, only the --kernel latest tests fail, each with ktls-vm's own line).
	tools/fetch-uml latest >&2 || true
	tools/fetch-uml 5.10 >&2 || true
	# Exercise the VM even on a host whose kernel has kTLS.
	export KTLS_VM_FORCE=1
}

setup() {
	cd "$BATS_TEST_DIRNAME/.."
	ROOT=$PWD
}

host_has_ktls() {
	python3 - 2>/dev/null <<-'EOF'
		import socket
		l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
		c = socket.create_connection(l.getsockname()); l.accept()
		c.setsockopt(socket.SOL_TCP, 31, b"tls")
	EOF
}

@test "probe on the host: no ULP, exit 1" {
	if host_has_ktls; then skip "this host kernel has kTLS"; fi
	run build/tools/ktls-probe
	[ "$status" -eq 1 ]
	[[ "$output" == *"ULP tls: no ("* ]]
	[[ "$output" == *"TLS 1.3 rekey: "* ]]
	run build/tools/ktls-probe --json
	[ "$status" -eq 1 ]
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert d["ulp"] is False, d' "$output"
}

@test "probe --help and bad arguments" {
	run build/tools/ktls-probe --help
	[ "$status" -eq 0 ]
	[[ "$output" == usage:* ]]
	run build/tools/ktls-probe --bogus
	[ "$status" -eq 2 ]
}

@test "probe in the VM: TLS 1.2 and 1.3, four ciphers, TX and RX" {
	run --separate-stderr tools/ktls-vm build/tools/ktls-probe --json
	echo "$output" "$stderr"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	python3 - "$output" <<-'EOF'
		import json, sys
		d = json.loads(sys.argv[1])  # also proves nothing but the JSON line is on stdout
		assert d["ulp"] is True, d
		for v in ("tls12", "tls13"):
		    assert set(d[v]) == {"aes-gcm-128", "aes-gcm-256", "aes-ccm-128", "chacha20-poly1305"}, d[v]
		    for c, dirs in d[v].items():
		        assert dirs == {"tx": True, "rx": True}, (v, c, dirs)
		        assert d["selftest"][v][c] == {"tx": "passed", "rx": "passed"}, (v, c, d["selftest"])
		assert d["rekey"] in (True, False), d
	EOF
}

@test "VM: exit status, cwd, environment, argv and separate stderr pass through" {
	mkdir -p "$BATS_TEST_TMPDIR/a dir"
	cd "$BATS_TEST_TMPDIR/a dir"
	KTLS_T_VAR=$'sp ace "dq" \'sq\' $x `bt` \\ nl\nend' \
		run --separate-stderr "$ROOT/tools/ktls-vm" --mem 256M -- \
		sh -c 'pwd; printf "%s\n" "$KTLS_T_VAR" "$#" "$1" "$2"; echo to-stderr >&2;
			printf "a\tb\r\n" > tabs; exit 7' argv0 'two words' '*'
	printf '%s\n' "$output" "--- stderr:" "$stderr"
	[ "$status" -eq 7 ]
	[ "${lines[0]}" = "$BATS_TEST_TMPDIR/a dir" ]
	[ "${lines[1]}" = "sp ace \"dq\" 'sq' \$x \`bt\` \\ nl" ]
	[ "${lines[2]}" = "end" ]
	[ "${lines[3]}" = 2 ]
	[ "${lines[4]}" = "two words" ]
	[ "${lines[5]}" = "*" ]
	[ "${#lines[@]}" -eq 6 ]
	[ "$stderr" = to-stderr ]
	# The command's file writes land in the caller's cwd on the host (hostfs), byte for byte.
	[ "$(od -An -c tabs | tr -s ' ')" = " a \t b \r \n" ]
}

@test "VM: 10,000 lines in order and nothing else, without any stdin" {
	tools/ktls-vm seq 10000 >"$BATS_TEST_TMPDIR/out" <&-
	seq 10000 | cmp - "$BATS_TEST_TMPDIR/out"
}

@test "VM: missing kernel is a one-line boot failure, exit 125" {
	KTLS_VM_KERNEL=/nonexistent run --separate-stderr tools/ktls-vm true
	[ "$status" -eq 125 ]
	[ -z "$output" ]
	[[ "$stderr" == "ktls-vm: "* ]]
	[ "${#stderr_lines[@]}" -eq 1 ]
}

@test "VM: module load failure inside the VM is a one-line boot failure, exit 125" {
	mkdir "$BATS_TEST_TMPDIR/mods" && : >"$BATS_TEST_TMPDIR/mods/modules.dep"
	KTLS_VM_MODULES="$BATS_TEST_TMPDIR/mods" run --separate-stderr tools/ktls-vm echo never
	echo "$stderr"
	[ "$status" -eq 125 ]
	[ -z "$output" ]
	[[ "$stderr" == "ktls-vm: "*module* ]]
	[ "${#stderr_lines[@]}" -eq 1 ]
}

@test "VM: --timeout kills the VM, exit 124" {
	SECONDS=0
	run --separate-stderr tools/ktls-vm --timeout 2 sleep 30
	[ "$status" -eq 124 ]
	[ "$stderr" = "ktls-vm: timeout after 2 s" ]
	[ "$SECONDS" -lt 10 ]
}

@test "VM --kernel latest: boots a kernel >= 6.14, status and stderr pass through" {
	run --separate-stderr tools/ktls-vm --kernel latest -- sh -c 'uname -r; echo to-stderr >&2; exit 5'
	printf '%s\n' "$output" "--- stderr:" "$stderr"
	[ "$status" -eq 5 ]
	[ "$stderr" = to-stderr ]
	[ "${#lines[@]}" -eq 1 ]
	# The release sorts at or after 6.14 (TLS 1.3 rekey).
	printf '6.14\n%s\n' "${lines[0]%%[-+]*}" | sort -V -C
}

@test "probe in the VM --kernel latest: four ciphers both ways, rekey yes" {
	run --separate-stderr tools/ktls-vm --kernel=latest build/tools/ktls-probe --json
	echo "$output" "$stderr"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	python3 - "$output" <<-'EOF'
		import json, sys
		d = json.loads(sys.argv[1])
		assert d["ulp"] is True, d
		for v in ("tls12", "tls13"):
		    for c, dirs in d[v].items():
		        assert dirs == {"tx": True, "rx": True}, (v, c, dirs)
		        assert d["selftest"][v][c] == {"tx": "passed", "rx": "passed"}, (v, c, d["selftest"])
		assert d["rekey"] is True, d
	EOF
	run tools/ktls-vm --kernel latest build/tools/ktls-probe
	[[ "$output" == *"TLS 1.3 rekey: yes"* ]]
}

@test "probe in the VM --kernel 6.1: kernel 6.1, rekey no" {
	run --separate-stderr tools/ktls-vm --kernel 6.1 build/tools/ktls-probe
	echo "$output" "$stderr"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "${lines[0]}" == "kernel: 6.1."* ]]
	[[ "$output" == *"TLS 1.3 rekey: no (EBUSY)"* ]]
}

@test "probe in the VM --kernel 5.10: no ChaCha in kTLS, TLS 1.3 AES-CCM fails the self-test" {
	run --separate-stderr tools/ktls-vm --kernel 5.10 build/tools/ktls-probe --json
	echo "$output" "$stderr"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	python3 - "$output" <<-'EOF'
		import json, sys
		d = json.loads(sys.argv[1])
		assert d["kernel"].startswith("5.10."), d
		assert d["ulp"] is True and d["rekey"] is False, d
		for v in ("tls12", "tls13"):
		    for c, dirs in d[v].items():
		        chacha = c == "chacha20-poly1305"
		        assert dirs == {"tx": not chacha, "rx": not chacha}, (v, c, dirs)
		        want = "refused" if chacha else "failed" if (v, c) == ("tls13", "aes-ccm-128") else "passed"
		        assert d["selftest"][v][c] == {"tx": want, "rx": want}, (v, c, d["selftest"])
	EOF
	run tools/ktls-vm --kernel 5.10 build/tools/ktls-probe
	[[ "$output" == *"TLS 1.3  AES-CCM-128        yes yes failed   failed"* ]]
}

@test "VM: a bad --kernel exits 2 with a usage line; KTLS_VM_KERNEL overrides --kernel" {
	run --separate-stderr tools/ktls-vm --kernel 5.4 true
	echo "$stderr"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == *"usage: tools/ktls-vm [--kernel 6.1|latest|5.10]"* ]]
	run --separate-stderr tools/ktls-vm --kernel
	[ "$status" -eq 2 ]
	[[ "$stderr" == "usage: "* ]]
	KTLS_VM_KERNEL=/nonexistent run --separate-stderr tools/ktls-vm --kernel latest true
	[ "$status" -eq 125 ]
	[[ "$stderr" == "ktls-vm: no User-Mode Linux kernel at /nonexistent"* ]]
}
