"""Answer cells that look for the grader's environment, processes, descriptors and files.

Each case prints what it reads (so a test can look for the caller's secret values in the graded
notebook), raises ``AssertionError("LEAK ...")`` when it finds a tell-tale of the grader (one of
``TELLTALES`` set in a process it can see, a grader's file, a capability that undoes the sandbox,
an answer from the template), and otherwise defines a correct ``square``: a case scores the point
of build.py's test cell exactly when it found nothing. ``LEAKS`` holds the cases that need no
parameter; ``read_files(files, folders)`` makes the case for a test's own secret files.
"""

from __future__ import annotations

# The variables a test sets, with values of its own, in the grading process's environment.
TOKEN_VAR, SECRET_VAR = "JUPYTERHUB_API_TOKEN", "AILYS_GRADER_SECRET"
TELLTALES = (TOKEN_VAR, SECRET_VAR, "JPY_API_TOKEN", "JUPYTERHUB_CLIENT_ID", "CONFIGPROXY_AUTH_TOKEN")

_PRELUDE = f"""import os
TELLTALES = [(n + '=').encode() for n in {TELLTALES!r}]
found = []
def seen(what, data):
    data = data if isinstance(data, bytes) else str(data).encode(errors='replace')
    print(what, repr(data[:20000]))
    found.extend(f'{{what}}: {{t.decode()}}' for t in TELLTALES if t in data)
def read(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        return f'<{{type(e).__name__}}>'.encode()
"""

_VERDICT = """
if found:
    raise AssertionError(f'LEAK through {sorted(set(found))}')
def square(x):
    return x * x
"""

_ENVIRON = """seen('os.environ', dict(os.environ))
for path in ('/proc/self/environ', '/proc/1/environ', '/proc/thread-self/environ'):
    seen(path, read(path))
"""

_CMDLINE = """for name in ('self/cmdline', '1/cmdline', 'self/status', 'self/mountinfo', 'self/maps'):
    seen(name, read(f'/proc/{name}'))
for link in ('/proc/self/cwd', '/proc/self/root', '/proc/self/exe'):
    seen(link, os.readlink(link))
"""

# Every process and thread it can see: environment, command line, maps, descriptors.
_PROC_WALK = """pids = [p for p in os.listdir('/proc') if p.isdigit()]
seen('pids', pids)
for pid in pids:
    tasks = os.listdir(f'/proc/{pid}/task') if os.path.isdir(f'/proc/{pid}/task') else []
    for where in [f'/proc/{pid}', *(f'/proc/{pid}/task/{t}' for t in tasks)]:
        for name in ('environ', 'cmdline', 'maps', 'status'):
            seen(f'{where}/{name}', read(f'{where}/{name}'))
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
        seen(f'/proc/{pid}/fd', {f: os.readlink(f'/proc/{pid}/fd/{f}') for f in fds})
    except OSError as e:
        seen(f'/proc/{pid}/fd', type(e).__name__)
"""

# Undo the sandbox: unmount its /proc and tmpfs (the host's /proc shows the grader's processes),
# mount a /proc of our own, or do either from a nested user namespace.
_ESCAPE = """import ctypes
libc = ctypes.CDLL(None, use_errno=True)
mounts = [line.split()[4] for line in read('/proc/self/mountinfo').decode().splitlines()]
for target in reversed(mounts):
    if target != '/' and libc.umount2(target.encode(), 2) == 0:
        found.append(f'unmounted {target}')
os.makedirs('myproc', exist_ok=True)
if libc.mount(b'proc', b'myproc', b'proc', 0, None) == 0:
    found.append('mounted a proc')
r, w = os.pipe()
child = os.fork()
if child == 0:
    ok = libc.unshare(0x10000000 | 0x00020000) == 0  # CLONE_NEWUSER | CLONE_NEWNS
    ok = ok and libc.umount2(b'/proc', 2) == 0
    os.write(w, b'escaped' if ok else b'held')
    os._exit(0)
os.waitpid(child, 0)
if os.read(r, 16) == b'escaped':
    found.append('unmounted /proc from a nested user namespace')
seen('capabilities', [l for l in read('/proc/self/status').decode().splitlines() if l.startswith('Cap')])
for pid in (p for p in os.listdir('/proc') if p.isdigit()):
    seen(f'/proc/{pid}/environ', read(f'/proc/{pid}/environ'))
"""

# Every descriptor it holds: a datagram or packet socket (the template's control socket is a
# SOCK_SEQPACKET pair) is asked for a kernel, as the grader asks; a pidfd or a file is read. The
# kernel's own zmq sockets (stream), pipes and eventfds are only looked at, not written to.
_FDS = """import json, socket, stat
request = json.dumps({'connection_file': '/tmp/k.json', 'workdir': '/', 'hide': [], 'work_root': '',
                      'limits': {}, 'extra_arguments': [], 'log': ''}).encode()
def probe(fd, link):
    seen(f'fd {fd}', link)
    if 'pidfd' in link:
        found.append(f'fd {fd} is a pidfd')
    elif link.startswith('socket:'):
        s = socket.socket(fileno=os.dup(fd))
        seen(f'fd {fd} type', s.type)
        if s.type in (socket.SOCK_SEQPACKET, socket.SOCK_DGRAM):
            s.settimeout(3)
            try:
                s.sendmsg([request])
                reply = s.recvmsg(65536, 1024)
                found.append(f'fd {fd} answered {reply[0][:200]!r}')
            except OSError as e:
                seen(f'fd {fd} sendmsg', type(e).__name__)
        os.close(s.detach())
    elif stat.S_ISREG(os.fstat(fd).st_mode):
        seen(f'fd {fd} content', os.pread(fd, 20000, 0))
for fd in sorted(map(int, os.listdir('/proc/self/fd'))):
    try:
        probe(fd, os.readlink(f'/proc/self/fd/{fd}'))
    except OSError as e:  # the listing's own descriptor, closed since
        seen(f'fd {fd}', type(e).__name__)
"""

# Its own memory, a fork of the template's: what follows each tell-tale name. A value (a run of
# token characters after 'NAME=') is a leak; the names this cell holds are followed by quotes.
_MEMORY = """import re
value = re.compile(rb'[A-Za-z0-9_.-]{8}')
with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', buffering=0) as mem:
    regions = [line.split() for line in maps]
    for r in regions:
        if 'r' not in r[1] or (len(r) > 5 and r[5] in ('[vvar]', '[vsyscall]', '[vvar_vclock]')):
            continue
        start, end = (int(x, 16) for x in r[0].split('-'))
        for at in range(start, end, 1 << 24):
            try:
                mem.seek(at)
                chunk = mem.read(min(1 << 24, end - at))
            except (OSError, OverflowError, ValueError):
                break
            for name in TELLTALES:
                i = chunk.find(name)
                while i >= 0:
                    after = chunk[i + len(name):i + len(name) + 80]
                    print('memory', name, repr(after))
                    if value.match(after):
                        found.append(f'memory: {name.decode()}')
                    i = chunk.find(name, i + 1)
"""

LEAKS = {
    "environ": _PRELUDE + _ENVIRON + _VERDICT,
    "cmdline": _PRELUDE + _CMDLINE + _VERDICT,
    "proc-walk": _PRELUDE + _PROC_WALK + _VERDICT,
    "escape": _PRELUDE + _ESCAPE + _VERDICT,
    "fds": _PRELUDE + _FDS + _VERDICT,
    "memory": _PRELUDE + _MEMORY + _VERDICT,
}


def read_files(files: list[str], folders: list[str]) -> str:
    """The case for a test's secret ``files`` (none may be read) and ``folders`` (each must look
    empty but for the way to the kernel's working copy, or be unreadable): the grader's home,
    the hub's data folder, secrets files."""
    return (
        _PRELUDE
        + f"""for path in {files!r}:
    data = read(path)
    seen(path, data)
    if not data.startswith(b'<') or not data.endswith(b'Error>'):
        found.append(f'read {{path}}')
for path in {folders!r}:
    try:  # the way down to its own working copy, mounted back, is all it may see there
        names = [n for n in os.listdir(path) if not (os.getcwd() + '/').startswith(f'{{path}}/{{n}}/')]
    except OSError:
        names = []
    seen(path, names)
    if names:
        found.append(f'listed {{path}}')
"""
        + _VERDICT
    )
