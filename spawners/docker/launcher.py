"""The first process (PID 1) of a learner's container: the standard library only, since the
spawner passes this file's source to the image's Python (``python3 -c``), as the Slurm job's
launcher is passed; nothing of ours needs to be in the image.

    python3 -c <this source> SERVER_ARGV...

It starts the server, forwards SIGTERM, SIGINT and SIGHUP to it, reaps the orphans that end up
with PID 1, and exits with the server's exit code. Its one other job is the memory limit: the
kernel's OOM killer picks the biggest process of the container's cgroup, a notebook's kernel,
and the server would only restart it ("kernel died"), the learner never told why. So when the
cgroup's oom_kill count grows, the session ends: the server is stopped and this process exits
with EXIT_OUT_OF_MEMORY, which the hub explains to the learner (words.py), as podman's own
State.OOMKilled does.
"""

import os
import signal
import sys

EXIT_OUT_OF_MEMORY = 86  # a code neither the server nor a signal (128 + n) gives
CHECK_EVERY = 0.5  # seconds between reads of the cgroup's OOM count: one small file read
STOP_GRACE = 5  # seconds the server has to stop after SIGTERM, before SIGKILL
# The container's own memory cgroup: cgroup v2, then v1 (podman mounts the container's cgroups).
OOM_COUNTERS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def oom_kills():
    """Processes of this cgroup killed by the OOM killer so far, or None if nothing says."""
    for path in OOM_COUNTERS:
        try:
            with open(path) as counters:
                for line in counters:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def exit_code(status):
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def reap(server):
    """Reap every ended child; the server's exit code if it is one of them, else None."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            return code
        if pid == server:
            code = exit_code(status)


def stop(server):
    """SIGTERM the server, SIGKILL after STOP_GRACE seconds; returns once it has ended."""
    os.kill(server, signal.SIGTERM)
    for _ in range(int(STOP_GRACE / 0.1)):
        if signal.sigtimedwait([signal.SIGCHLD], 0.1) and reap(server) is not None:
            return
    os.kill(server, signal.SIGKILL)
    while reap(server) is None:
        signal.sigtimedwait([signal.SIGCHLD], 0.1)


def main(argv):
    watched = {*FORWARDED, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)  # taken with sigtimedwait, never as handlers
    server = os.fork()
    if server == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)
        os.execv(argv[0], argv)
    baseline = oom_kills()
    while True:
        got = signal.sigtimedwait(watched, CHECK_EVERY)
        if got and got.si_signo in FORWARDED:
            os.kill(server, got.si_signo)
        elif got:  # SIGCHLD
            code = reap(server)
            if code is not None:
                sys.exit(code)
        if baseline is not None and (oom_kills() or 0) > baseline:
            print(
                "ailys-hub: a process of this session went over its memory limit and was killed by "
                "the kernel; stopping the session",
                file=sys.stderr,
                flush=True,
            )
            stop(server)
            sys.exit(EXIT_OUT_OF_MEMORY)


if __name__ == "__main__":
    main(sys.argv[1:])
