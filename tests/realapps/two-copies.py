# SPDX-License-Identifier: Apache-2.0
# Two Mbed TLS copies in one process (tests/realapps-bookworm.bats): each side is a plugin
# (tests/realapps/side.c) linked with its own copy and loaded RTLD_LOCAL, like a daemon's module.
# "run" makes a server and a client context of that side do a full handshake over a non-blocking
# socketpair and exchange 100 KB each way, all through the side's plugin; only the set-up calls the
# shim does not wrap (keys, certificates, RNG, BIO functions) go to the side's libraries directly.
# The 2.28 side also sets 2.28's key export callback on its configs and checks that it fires with
# the application's own pointer.
# "setup" makes a side's contexts (mbedtls_ssl_setup) without its callback; the "run" after it
# sets the callbacks then (the older one on the server's config, _ext on the client's) (after setup, maybe after another copy was loaded) and lets the first
# read/write run the handshake (Mbed TLS's implicit handshake, which the shim finishes itself).
#
# usage: two-copies.py CERTDIR STEP...   STEP: load:NAME:PLUGIN:LIBMBEDTLS:LIBX509:LIBCRYPTO
#                                              (gload: the same, RTLD_GLOBAL), setup:NAME or
#                                              run:NAME
# Prints "NAME: TLS ok, 102400 bytes each way" per run; anything else is a failure.
import ctypes, os, socket, sys

WANT = (-0x6900, -0x6880)  # MBEDTLS_ERR_SSL_WANT_READ, WANT_WRITE
BIG = 1 << 16              # bytes for any context or config, larger than either version's
sides, keep = {}, []


def buf():
    b = ctypes.create_string_buffer(BIG)
    keep.append(b)
    return b


def check(what, ret):
    if ret != 0:
        sys.exit("%s: %s returned %d (-0x%04x)" % (side_name, what, ret, -ret))


def load(name, plugin, ssl, x509, crypto, mode=ctypes.RTLD_LOCAL):
    sides[name] = [ctypes.CDLL(p, mode=mode) for p in (plugin, ssl, x509, crypto)]


# 2.28's key export callback, set on the config: it must reach the 2.28 copy and fire once per
# handshake, whichever copy the shim found first.
EXPORT_KEYS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_int)
exported = []
app_p = ctypes.c_int(228)  # the application's own pointer: the callback must get it back


def keys_exported(p, *args):
    if p != ctypes.addressof(app_p):
        sys.exit("the key export callback got p=%r, not the application's %#x" % (p, ctypes.addressof(app_p)))
    exported.append(1)
    return 0


on_keys = EXPORT_KEYS(keys_exported)
# 2.28's older callback (no randoms), which shares the config's one pointer with the _ext one.
EXPORT_KEYS_PLAIN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t)
on_keys_plain = EXPORT_KEYS_PLAIN(keys_exported)


def set_export(name, conf, plain=False):
    plugin = sides[name][0]
    if plain:
        check("conf_export_keys_cb", plugin.side_conf_export_keys_cb(conf, on_keys_plain, ctypes.byref(app_p)))
    else:
        check("conf_export_keys_ext_cb",
              plugin.side_conf_export_keys_ext_cb(conf, on_keys, ctypes.byref(app_p)))


def config(name, endpoint, rng, certs, export):
    plugin, ssl, x509, crypto = sides[name]
    conf = buf()
    plugin.side_config_init(conf)
    check("config_defaults", plugin.side_config_defaults(conf, endpoint, 0, 0))
    if export:
        set_export(name, conf)
    ssl.mbedtls_ssl_conf_rng(conf, ctypes.cast(crypto.mbedtls_ctr_drbg_random, ctypes.c_void_p), rng)
    ca, crt, key = buf(), buf(), buf()
    x509.mbedtls_x509_crt_init(ca)
    check("ca", x509.mbedtls_x509_crt_parse_file(ca, os.path.join(certs, "ca.crt").encode()))
    ssl.mbedtls_ssl_conf_ca_chain(conf, ca, None)
    if endpoint == 1:  # MBEDTLS_SSL_IS_SERVER
        x509.mbedtls_x509_crt_init(crt)
        crypto.mbedtls_pk_init(key)
        check("crt", x509.mbedtls_x509_crt_parse_file(crt, os.path.join(certs, "server-rsa.crt").encode()))
        # 3.6 takes an RNG after the password, 2.28 does not (extra arguments are harmless)
        check("key", crypto.mbedtls_pk_parse_keyfile(key, os.path.join(certs, "server-rsa.key").encode(),
                                                     None, crypto.mbedtls_ctr_drbg_random, rng))
        check("own_cert", ssl.mbedtls_ssl_conf_own_cert(conf, crt, key))
    else:
        ssl.mbedtls_ssl_conf_authmode(conf, 2)  # MBEDTLS_SSL_VERIFY_REQUIRED
    return conf


def context(name, conf, fd):
    plugin, ssl = sides[name][:2]
    ctx, net = buf(), ctypes.c_int(fd)
    keep.append(net)
    plugin.side_init(ctx)
    check("setup", plugin.side_setup(ctx, conf))
    check("hostname", ssl.mbedtls_ssl_set_hostname(ctx, b"localhost"))
    cast = lambda f: ctypes.cast(f, ctypes.c_void_p)
    plugin.side_set_bio(ctx, ctypes.byref(net), cast(ssl.mbedtls_net_send), cast(ssl.mbedtls_net_recv), None)
    return ctx


def pump(name, step, what):
    """Calls step(ctx) on the server and the client in turn until both are done."""
    done = [False, False]
    for _ in range(100000):
        for i in (0, 1):
            if not done[i]:
                ret = step(i)
                if ret not in WANT:
                    check(what, ret if ret < 0 else 0)
                    done[i] = True
        if all(done):
            return
    sys.exit("%s: %s did not finish" % (name, what))


def setup(name, export):
    """The side's RNG, configs and set-up contexts over a non-blocking socketpair."""
    plugin, ssl, x509, crypto = sides[name]
    if hasattr(crypto, "psa_crypto_init"):
        check("psa_crypto_init", crypto.psa_crypto_init())
    ent, rng = buf(), buf()
    crypto.mbedtls_entropy_init(ent)
    crypto.mbedtls_ctr_drbg_init(rng)
    check("seed", crypto.mbedtls_ctr_drbg_seed(rng, crypto.mbedtls_entropy_func, ent, None, 0))
    a, b = socket.socketpair()
    for s in (a, b):
        s.setblocking(False)
    confs = [config(name, e, rng, sys.argv[1], export) for e in (1, 0)]
    return [context(name, confs[i], s.fileno()) for i, s in enumerate((a, b))], confs, (a, b)


prepared = {}


def run(name):
    global side_name
    side_name = name
    plugin = sides[name][0]
    late = name in prepared
    ctxs, confs, (a, b) = prepared.pop(name) if late else setup(name, name == "228")
    del exported[:]
    if late and name == "228":  # the server's config gets the older callback, the client's _ext
        for i, conf in enumerate(confs):
            set_export(name, conf, plain=i == 0)
    if not late:
        pump(name, lambda i: plugin.side_handshake(ctxs[i]), "handshake")
    data = [os.urandom(102400), os.urandom(102400)]
    sent, got = [0, 0], [bytearray(), bytearray()]
    rbuf = ctypes.create_string_buffer(16384)

    def move(i):  # side i writes its data and reads the other's
        if sent[i] < len(data[i]):
            chunk = data[i][sent[i]:sent[i] + 16384]
            ret = plugin.side_write(ctxs[i], chunk, len(chunk))
            if ret > 0:
                sent[i] += ret
            elif ret not in WANT:
                return ret
        ret = plugin.side_read(ctxs[i], rbuf, len(rbuf))
        if ret > 0:
            got[i] += rbuf.raw[:ret]
        elif ret not in WANT:
            return ret
        return 0 if sent[i] == len(data[i]) and len(got[i]) == len(data[1 - i]) else WANT[0]

    pump(name, move, "read/write")
    if bytes(got[0]) != data[1] or bytes(got[1]) != data[0]:
        sys.exit("%s: the bytes differ" % name)
    if name == "228" and len(exported) != 2:
        sys.exit("%s: the key export callback fired %d times, not twice" % (name, len(exported)))
    for c in ctxs:
        plugin.side_close_notify(c)
        plugin.side_free(c)
    a.close()
    b.close()
    print("%s: TLS ok, %d bytes each way" % (name, len(data[0])), flush=True)


side_name = "?"
for step in sys.argv[2:]:
    verb, name, *args = step.split(":")
    if verb in ("load", "gload"):
        load(name, *args, mode=ctypes.RTLD_GLOBAL if verb == "gload" else ctypes.RTLD_LOCAL)
    elif verb == "setup":
        side_name = name
        prepared[name] = setup(name, False)
    else:
        run(name)
