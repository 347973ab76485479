"""`ailys serve hub|proxy|podman`: one part of a site in the foreground, for a service manager.

The systemd units of ansible/ run these: each replaces itself (exec) with the same argv and
environment that `ailys up` starts (hub_config/launch.py), so the units and `ailys up` cannot
drift apart, and systemd's main PID is the program itself. Its output goes to the service
manager's journal, not to a log file of ours. Run as the hub account (the unit's User=).
"""

from __future__ import annotations

import os

import click

from .launch import Launch, hub_launch, podman_launch, podman_socket, proxy_launch
from .secrets import ensure_demo_logins, load_secrets
from .site_option import catalogue_or_exit, site_option

PARTS = ("hub", "proxy", "podman")


def launch_of(part: str, site: str) -> Launch:
    catalogue = catalogue_or_exit(site)
    catalogue.data_dir.mkdir(parents=True, exist_ok=True)
    if part == "hub":
        if catalogue.site.authentication.demo_accounts:  # as `ailys up` makes them, before the hub reads them
            ensure_demo_logins(load_secrets(catalogue.data_dir), catalogue.people())
        return hub_launch(catalogue)
    if part == "proxy":
        return proxy_launch(catalogue, load_secrets(catalogue.data_dir))
    import importlib

    store = importlib.import_module("images.store")  # by name, as `ailys up` does
    given = catalogue.site.spawner.docker.image_store
    root = (catalogue.site_file.parent / given).resolve() if given else store.DEFAULT_ROOT
    socket = podman_socket(catalogue)
    socket.parent.mkdir(parents=True, exist_ok=True)
    socket.unlink(missing_ok=True)  # left by a service that was killed
    return podman_launch(catalogue, store.podman_env(root))


@click.command()
@click.argument("part", type=click.Choice(PARTS))
@site_option
def serve(part: str, site: str) -> None:
    """Run the hub, the proxy or podman's API service of a site in the foreground (systemd units)."""
    launch = launch_of(part, site)
    os.chdir(launch.cwd)
    os.execve(launch.argv[0], launch.argv, launch.env)
