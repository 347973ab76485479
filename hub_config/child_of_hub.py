"""Run a hub service so that it ends with the hub: ``python -m hub_config.child_of_hub CMD ARG...``.

JupyterHub starts its managed services (gallery, exchange, formgraders, footprint, course sync,
culler) as its children and stops them when it shuts down cleanly. A hub that is killed (kill -9,
the OOM killer) leaves them running, holding their ports, and the hub started again then cannot
start them and exits. Linux's parent-death signal ends them with the hub instead: set here, after
JupyterHub has switched to the service's account (a change of credentials clears it), and kept
across execve, so CMD runs in place of this process. Learners' servers are not started this way:
they outlive a hub restart on purpose.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m hub_config.child_of_hub COMMAND [ARG...]")
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    if os.getppid() != parent:  # the hub died before the signal was set
        sys.exit(f"{argv[0]}: not started, the hub that started it has exited")
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
