"""Answer cells whose kernel dies, freezes or loses its channels: none may earn a point.

Each answer defines a correct ``square`` (build.py's test cell: ``assert square(3) == 9``, one
point), so only dying could earn the point. The kernel is PID 1 of its own PID namespace: signals
it sends itself (or PID 1) with their default action are ignored by Linux, so killing itself
takes a real fault, an exit, or its parent (``os.getppid()`` is 0 there: ``kill(0)`` is its
process group, the sandbox's init included).

- ``DYING``: the kernel dies, freezes or loses a channel before the test cell's reply, every time:
  0 points, with a reason;
- ``RACING``: it dies soon after its answer, so the test cell may or may not be answered first:
  either 1 point and no reason (a live kernel answered the test), or 0 with a reason; never a
  point beside a reason (what happened before the fix: "executed", no output, so passed);
- ``SURVIVING``: what Linux ignores for a namespace's PID 1: the kernel lives, and earns its point.
"""

from __future__ import annotations

from textwrap import dedent

SQUARE = "def square(x):\n    return x * x\n"


def _answer(code: str) -> str:
    return SQUARE + dedent(code).lstrip("\n")


# every socket the kernel holds: its zmq connections to the grader
_SOCKETS = """
    import os, socket
    fds = []
    for f in os.listdir('/proc/self/fd'):
        try:
            if os.readlink(f'/proc/self/fd/{f}').startswith('socket:'):
                fds.append(int(f))
        except OSError:
            pass  # the listing's own descriptor, closed by now
"""

DYING = {
    # its parent is the sandbox's init, outside the namespace; the kernel dies with it a moment
    # later (PR_SET_PDEATHSIG), and waits for that
    "kill-parent": _answer("""
        import os, signal, threading
        os.kill(os.getppid(), signal.SIGKILL)
        threading.Event().wait()
    """),
    "child-kills-group": _answer("""
        import os, signal, threading
        if os.fork() == 0:
            os.killpg(0, signal.SIGKILL)
        threading.Event().wait()
    """),
    "exit-0": _answer("import os\nos._exit(0)\n"),
    "exit-1": _answer("import os\nos._exit(1)\n"),
    "segfault-ctypes": _answer("import ctypes\nctypes.string_at(0)\n"),
    "abort": _answer("import os\nos.abort()\n"),
    "c-recursion": _answer("""
        import sys
        sys.setrecursionlimit(10**8)
        x = []
        for _ in range(10**6):
            x = [x]
        repr(x)
    """),
    "closerange": _answer("import os\nos.closerange(3, 65536)\n"),
    "shutdown-sockets": _answer(
        _SOCKETS
        + """
        for fd in fds:
            socket.socket(fileno=os.dup(fd)).shutdown(socket.SHUT_RDWR)
    """
    ),
    # half-open: one channel closed, the others (and the heartbeat) alive
    "close-shell": _answer("get_ipython().kernel.shell_stream.close()\n"),
    "close-iopub": _answer("get_ipython().kernel.iopub_socket.close()\n"),
    "fork-parent-exits": _answer("import os\nif os.fork():\n    os._exit(0)\n"),
    # the init stopped first, so the grader cannot see the kernel end: only the time limit tells
    "stop-parent-then-exit": _answer("""
        import os, signal
        os.kill(os.getppid(), signal.SIGSTOP)
        os._exit(0)
    """),
    # dies as the test cell starts: a hook registered here runs before the next cell's code
    "die-before-next-cell": _answer("""
        import os
        get_ipython().events.register('pre_run_cell', lambda *a: os._exit(0))
    """),
    # the same, after publishing a result "1" for the test cell (nbgrader reads partial credit there)
    "fake-result-then-die": _answer("""
        import os, time
        def fake(*a):
            get_ipython().displayhook(1)
            time.sleep(1)
            os._exit(0)
        get_ipython().events.register('pre_run_cell', fake)
    """),
    # dies while the test cell runs: square waits for a thread to kill the group
    "kill-during-test": dedent("""
        import os, signal, threading
        called = threading.Event()
        def square(x):
            called.set()
            threading.Event().wait()
        threading.Thread(target=lambda: called.wait() and os.killpg(0, signal.SIGKILL), daemon=True).start()
    """).lstrip("\n"),
    "exit-in-square": "import os\ndef square(x):\n    os._exit(0)\n",
    # frozen: ignores the interrupt at the time limit
    "freeze": _answer("""
        import signal, threading
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Event().wait()
    """),
}

RACING = {
    "kill-parent-no-wait": _answer("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"),
    "exit-soon": _answer("import os, threading\nthreading.Timer(0.002, os._exit, (0,)).start()\n"),
    "ipython-exit": _answer("exit()\n"),  # ipykernel stops 0.1 s after its reply
}

SURVIVING = {
    "sigkill-self": _answer("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"),
    "sigterm-self": _answer("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"),
    "sigsegv-self": _answer("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"),
    "sigstop-self": _answer("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n"),
    "kill-pid-1": _answer("""
        import os, signal
        assert (os.getpid(), os.getppid()) == (1, 0)  # the kernel is PID 1, its parent outside
        os.kill(1, signal.SIGKILL)
    """),
    # the init relays it to the kernel, which ignores it as PID 1
    "sigterm-parent": _answer("import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\n"),
    "sigstop-parent": _answer("import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n"),
    "exit-in-thread": _answer("""
        import sys, threading
        t = threading.Thread(target=sys.exit)
        t.start()
        t.join()
    """),
}
