# SPDX-License-Identifier: Apache-2.0
"""tools/bench-daemon's host side: the host's view of the User-Mode Linux guest (which host process
ran the server's user code, and for how long), and the tables and chart of the results."""
import datetime
import json
import os
import shutil
import statistics
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20
GiB = 1 << 30
BEGIN = '<!-- bench-daemon:begin (tools/bench-daemon --write-doc writes this part) -->'
END = '<!-- bench-daemon:end -->'
LABEL = {'shim': 'mod_mbedtls + shim', 'mbedtls': 'mod_mbedtls plain', 'openssl': 'mod_openssl + kTLS'}


class StubMonitor(threading.Thread):
    """Every 20 ms, the host CPU times of each child of the UML kernel process. Each child runs one
    guest address space (one guest process and its threads), so its host user time is exactly that
    process's user-space CPU; the guest's own counters lump user and kernel time together."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.uml, self.samples = root, None, []
        self.stopped = threading.Event()
        self.tck = os.sysconf('SC_CLK_TCK')

    @staticmethod
    def children(pid):
        out = []
        try:
            for t in os.listdir('/proc/%d/task' % pid):
                with open('/proc/%d/task/%s/children' % (pid, t)) as f:
                    out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return out

    def find_uml(self):
        todo = [self.root]
        while todo:
            p = todo.pop(0)
            try:
                with open('/proc/%d/cmdline' % p, 'rb') as f:
                    if b'rootfstype=hostfs' in f.read():
                        return p
            except OSError:
                continue
            todo += self.children(p)
        return None

    def run(self):
        while not self.stopped.wait(0.02):
            if self.uml is None:
                self.uml = self.find_uml()
                continue
            snap = {}
            for c in self.children(self.uml):
                try:
                    with open('/proc/%d/stat' % c) as f:
                        s = f.read()
                except OSError:
                    continue
                f = s[s.rindex(')') + 2:].split()
                snap[c] = (int(f[11]) / self.tck, int(f[12]) / self.tck)
            self.samples.append((time.time_ns(), snap))

    def server_user(self, t0, t1):
        """User CPU in [t0, t1] of the busiest host child that already ran a second before t0:
        the server (long running); the load client is a new process every run."""
        before = [s for s in self.samples if s[0] <= t0 - 1e9]
        a = [s for s in self.samples if s[0] <= t0]
        b = [s for s in self.samples if s[0] >= t1]
        if not before or not a or not b:
            return None
        old, sa, sb = before[-1][1], a[-1][1], b[0][1]
        deltas = [sb[p][0] - sa[p][0] for p in sb if p in sa and p in old]
        return max(deltas) if deltas else None


def attribute(out, mon, smoke, vm_seconds):
    """daemon.json: the guest's results, each run's server CPU split into user (host view) and
    system (the rest of the guest's total), and the run's environment."""
    try:
        with open(os.path.join(out, 'daemon-guest.json')) as f:
            res = json.load(f)
    except (OSError, ValueError):
        return
    for r in res['runs'] + res['downloads']:
        u = mon.server_user(*r['window']) if mon else None
        r['user'] = None if u is None else min(u, r['cpu'])
        r['sys'] = None if u is None else r['cpu'] - r['user']

    def cmd(*a):
        return subprocess.run(a, capture_output=True, text=True).stdout.strip()
    versions = {}
    try:
        with open(os.path.join(ROOT, 'build', 'realapps', 'versions')) as f:
            versions = dict(line.split() for line in f if line.strip())
    except (OSError, ValueError):
        pass
    res['env'] = dict(date=datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
                      commit=cmd('git', 'rev-parse', '--short', 'HEAD'), smoke=smoke,
                      vm_seconds=vm_seconds and round(vm_seconds, 1), lighttpd=versions.get('lighttpd', '?'),
                      mbedtls=versions.get('libmbedtls21', '?'), openssl=versions.get('libssl3t64', '?'),
                      host_cpu=cmd('sh', '-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
                      ncpu=os.cpu_count())
    with open(os.path.join(out, 'daemon.json'), 'w') as f:
        json.dump(res, f, indent=1)


def mmm(values, digits):
    """median (min–max) of values."""
    v = sorted(values)
    if len(v) == 1:
        return '%.*f' % (digits, v[0])
    return '%.*f (%.*f–%.*f)' % (digits, statistics.median(v), digits, v[0], digits, v[-1])


def fmt(x, digits=0):
    return '—' if x is None else ('%.*f' % (digits, x))


def ratio(a, b):
    return '—' if not a or not b else '%.2f×' % (a / b)


def rps_table(res):
    rows = ['| response | connections | clients | ' + ' | '.join(LABEL[s] for s in LABEL) +
            ' | shim ÷ plain | shim ÷ openssl |', '|---|---|---:|---:|---:|---:|---:|---:|']
    by = {(r['size'], r['close'], r['clients'], r['server']): r for r in res['runs']}
    for close in (False, True):
        for size in ('1k', '64k'):
            for c in (1, 16, 64):
                v = {s: by[(size, close, c, s)]['requests'] / by[(size, close, c, s)]['seconds']
                     for s in LABEL if (size, close, c, s) in by}
                if not v:
                    continue
                rows.append('| %s | %s | %d | %s | %s | %s |' % (
                    '1 KiB' if size == '1k' else '64 KiB', 'new per request' if close else 'keep-alive', c,
                    ' | '.join(fmt(v.get(s)) for s in LABEL), ratio(v.get('shim'), v.get('mbedtls')),
                    ratio(v.get('shim'), v.get('openssl'))))
    return rows


def cpu_table(res):
    rows = ['| response | connections | clients | ' + ' | '.join(LABEL[s] for s in LABEL) + ' |',
            '|---|---|---:|---:|---:|---:|']
    by = {(r['size'], r['close'], r['clients'], r['server']): r for r in res['runs']}
    for close in (False, True):
        for size in ('1k', '64k'):
            for c in (1, 64):
                cells = []
                for s in LABEL:
                    r = by.get((size, close, c, s))
                    n = r and r['requests']
                    cells.append('—' if not n else '%s + %s' % (
                        fmt(r['user'] and r['user'] / n * 1e6), fmt(r['sys'] is not None and r['sys'] / n * 1e6)))
                rows.append('| %s | %s | %d | %s |' % ('1 KiB' if size == '1k' else '64 KiB',
                                                        'new per request' if close else 'keep-alive', c,
                                                        ' | '.join(cells)))
    return rows


def download_table(res):
    rows = ['| | MiB/s, median (min–max) | server CPU s per GiB, user + system (medians) | '
            'TlsTxSw, TlsRxSw over the downloads |', '|---|---:|---:|---|']
    for s in LABEL:
        d = [r for r in res['downloads'] if r['server'] == s]
        if not d:
            continue
        mibs = mmm([r['bytes'] / MiB / r['seconds'] for r in d], 1)
        us = [(r['user'], r['sys']) for r in d if r.get('user') is not None]
        cpu = '—' if not us else '%.2f + %.2f' % (statistics.median(u for u, _ in us) * GiB / d[0]['bytes'],
                                                  statistics.median(y for _, y in us) * GiB / d[0]['bytes'])
        rows.append('| %s | %s | %s | %d, %d of %d |' % (LABEL[s], mibs, cpu,
                                                          sum(r['stat']['TlsTxSw'] for r in d),
                                                          sum(r['stat']['TlsRxSw'] for r in d), len(d)))
    return rows


def syscall_table(res):
    rows = ['| | ' + ' | '.join(LABEL[s] for s in LABEL) + ' |', '|---|---|---|---|']
    for path, close in (('/1k', False), ('/64k', False), ('/1k', True), ('/big', False)):
        cells = []
        for s in LABEL:
            r = next((x for x in res['strace'] if x['server'] == s and x['path'] == path and x['close'] == close), None)
            cells.append('—' if not r else '%.1f (%s)' % (r['per_request'], ', '.join(
                '%s %.1f' % kv for kv in r['top'].items())))
        what = 'one 64 MiB download' if path == '/big' else '%s, %s' % (
            path[1:].replace('k', ' KiB'), 'new connection' if close else 'keep-alive')
        rows.append('| %s | %s |' % (what, ' | '.join(cells)))
    return rows


def stat_lines(res):
    """Who carried the records: the kernel's TLS contexts per connection, from the runs with a
    new connection per request."""
    out = []
    for s in LABEL:
        rs = [r for r in res['runs'] if r['server'] == s and r['close']]
        n = sum(r['connections'] for r in rs)
        if n:
            tx = sum(r['stat']['TlsTxSw'] for r in rs) / n
            rx = sum(r['stat']['TlsRxSw'] for r in rs) / n
            out.append('- %s: TlsTxSw %.2f and TlsRxSw %.2f per connection (both ends counted: the '
                       'client is OpenSSL without kTLS, so all of it is the server\'s)' % (LABEL[s], tx, rx))
    return out


def nopad_table(res):
    rows = ['| receiver | CPU s per GiB, median (min–max) | runs | TlsRxNoPadViolation |',
            '|---|---:|---:|---:|']
    per = {}
    for r in res['nopad']:
        per.setdefault(r['no_pad'], []).append(r)
    for k, label in ((True, 'zero-copy receive (default)'), (False, '`KTLS_SHIM_RX_NO_PAD=0`')):
        rs = per.get(k, [])
        if rs:
            rows.append('| %s | %s | %d | %d |' % (label, mmm([r['cpu'] * GiB / r['bytes'] for r in rs], 2),
                                                     len(rs), sum(r['stat']['TlsRxNoPadViolation'] for r in rs)))
    return rows


def nopad_ratio(res):
    """On ÷ off, each repeat's pair (run back to back) on its own: median (min–max)."""
    reps = {}
    for r in res['nopad']:
        reps.setdefault(r['rep'], {})[r['no_pad']] = r['cpu'] / r['bytes']
    v = [p[True] / p[False] for p in reps.values() if p.get(True) and p.get(False)]
    return mmm(v, 2) if v else '—'


def markdown(res):
    e = res.get('env', {})
    lines = ['- command: `make bench` (tools/bench-daemon%s); date %s; ktlsshim %s' % (
        ' --smoke' if e.get('smoke') else '', e.get('date', '?'), e.get('commit', '?')),
        '- kernel %s (User-Mode Linux, one virtual CPU, on %s, %s host CPUs); the VM ran %s s' % (
            res.get('kernel', '?'), e.get('host_cpu', '?'), e.get('ncpu', '?'), e.get('vm_seconds', '?')),
        '- Debian 13 lighttpd %s, Mbed TLS %s, OpenSSL %s; TLS 1.3 AES-128-GCM, RSA-2048 certificate, '
        'no resumption' % (e.get('lighttpd', '?'), e.get('mbedtls', '?'), e.get('openssl', '?'))]
    if res.get('errors'):
        lines.append('- **failed**: ' + '; '.join(res['errors']))
    lines += ['', '#### Requests per second', ''] + rps_table(res)
    lines += ['', '#### Server CPU per request, µs (user + system)', ''] + cpu_table(res)
    lines += ['', '#### One 64 MiB download', ''] + download_table(res)
    lines += ['', '#### Server system calls per request (strace -c; the most frequent in brackets)', '']
    lines += syscall_table(res)
    lines += ['', '#### Who carried the records', ''] + stat_lines(res)
    lines += ['', '#### TLS 1.3 zero-copy receive (`TLS_RX_EXPECT_NO_PAD`)', '',
              'The stand-in apps, shim at both ends, %d MiB client to server per run, the server '
              'with and without the option; its whole CPU (guest view: after the hand-off nearly all '
              'of it is kernel work, decrypting and copying).' % (
                  res['nopad'][0]['bytes'] // MiB if res.get('nopad') else 0), ''] + nopad_table(res)
    lines += ['', 'With ÷ without, each pair of runs on its own: %s.' % nopad_ratio(res)]
    return '\n'.join(lines) + '\n'


def chart(res, png):
    if not shutil.which('gnuplot'):
        return
    by = {(r['size'], r['close'], r['clients'], r['server']): r['requests'] / r['seconds'] for r in res['runs']}
    data = []
    for close in (False, True):
        for size in ('1k', '64k'):
            for c in (1, 16, 64):
                label = '%s %s %d' % (size, 'new' if close else 'k-a', c)
                data.append('"%s" %s' % (label, ' '.join(str(by.get((size, close, c, s), 0)) for s in LABEL)))
    script = '''set terminal pngcairo size 1000,420 font ",10" noenhanced
set output "%s"
set title "lighttpd, requests/s (k-a: keep-alive, new: a connection per request; clients)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set xtics rotate by -30
set key top right
$d << EOD
%s
EOD
plot $d using 2:xtic(1) title "%s", '' using 3 title "%s", '' using 4 title "%s"
''' % (png, '\n'.join(data), LABEL['shim'], LABEL['mbedtls'], LABEL['openssl'])
    subprocess.run(['gnuplot'], input=script, text=True, capture_output=True)


def render(out, write_doc, root):
    try:
        with open(os.path.join(out, 'daemon.json')) as f:
            res = json.load(f)
    except (OSError, ValueError):
        print('bench-daemon: no %s/daemon.json' % out)
        return 1
    md = markdown(res)
    with open(os.path.join(out, 'daemon.md'), 'w') as f:
        f.write(md)
    if write_doc:
        doc = os.path.join(root, 'docs', 'benchmarks.md')
        with open(doc) as f:
            text = f.read()
        block = BEGIN + '\n' + md + END
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text += '\n' + block + '\n'
        with open(doc, 'w') as f:
            f.write(text)
        chart(res, os.path.join(root, 'docs', 'benchmarks-daemon.png'))
    return 1 if res.get('errors') else 0
