"""Servers a killed hub left behind: found by their environment, stopped before a new one starts.

JupyterHub records a local server's process in its database only once start() has returned. A hub
killed while starting one (kill -9, the OOM killer, a node reboot of the hub's service only) leaves
that process running, unknown to the hub started again: the learner, who reloads, would get a
second server beside the first, and the first would keep its API token. Before it starts a server,
the spawner stops any server process of the same user and server name (JUPYTERHUB_USER and
JUPYTERHUB_SERVER_NAME, which JupyterHub sets in every server's environment), with its kernels.
"""

from __future__ import annotations

import contextlib
import logging

import psutil

MARK = "jupyterhub-singleuser"  # in every server's command line (spawners/jupyter-config)


def leftover_servers(user: str, server_name: str) -> list[psutil.Process]:
    """The running server processes of ``user``'s server ``server_name`` ("" for the default)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if MARK not in " ".join(proc.info["cmdline"] or []):
                continue
            env = proc.environ()
            if env.get("JUPYTERHUB_USER") == user and env.get("JUPYTERHUB_SERVER_NAME", "") == server_name:
                found.append(proc)
    return found


def stop_leftovers(user: str, server_name: str, log: logging.Logger, grace: float = 5) -> int:
    """Stop them and their children (kernels, terminals): SIGTERM, then SIGKILL after ``grace``
    seconds. The number of servers stopped."""
    servers = leftover_servers(user, server_name)
    for server in servers:
        log.warning(
            "Stopping %s's server %r left running (pid %d) by a hub that stopped while starting it",
            user,
            server_name,
            server.pid,
        )
        with contextlib.suppress(psutil.Error):
            tree = [server, *server.children(recursive=True)]
            for proc in tree:
                with contextlib.suppress(psutil.Error):
                    proc.terminate()
            _, alive = psutil.wait_procs(tree, timeout=grace)
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(alive, timeout=grace)
    return len(servers)
