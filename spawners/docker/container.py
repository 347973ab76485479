"""What one learner's container is made of, from the launch (a course's profile, with the learner's
own cpus and memory) and their account: limits, identity, mounts, security options, environment.
Pure: the spawner hands the result to DockerSpawner's create_container.
"""

from __future__ import annotations

import dataclasses
import pwd

LABEL = "ailys-hub"  # label prefix: ailys-hub.user, ailys-hub.course, ailys-hub.environment
# JupyterHub's pre-0.7 name of the server's token: nothing in a server reads it any more.
DROPPED_ENV = ("JPY_API_TOKEN",)
NO_LOGIN_SHELLS = {"", "/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"}


@dataclasses.dataclass(frozen=True)
class ContainerPlan:
    image: str
    mem_limit: int  # bytes: DockerSpawner.mem_limit
    cpu_limit: float  # cores: DockerSpawner.cpu_limit (a CFS quota of cpus x 100 ms per 100 ms)
    volumes: dict  # DockerSpawner.volumes: {host path: {"bind": path, "mode": "rw"}}
    create: dict  # DockerSpawner.extra_create_kwargs
    host: dict  # DockerSpawner.extra_host_config
    env: dict  # added to the server's environment


def plan_container(
    *,
    image: str,
    course: str,
    environment: str,
    cpus: int,
    memory: int,
    account: pwd.struct_passwd,
    username: str,
    pids_limit: int,
    tmp_size: int,
    teams: dict[str, int] | None = None,
) -> ContainerPlan:
    """``teams``: team folder -> its group's gid, for the folders this account reaches: each bound
    at its own path (the home's team-<team> links resolve inside) and its group added to the
    container's process, whose groups are otherwise the primary one only."""
    home = account.pw_dir
    shell = account.pw_shell if account.pw_shell not in NO_LOGIN_SHELLS else "/bin/bash"
    create = {
        # The learner's own uid and primary group, never root: the image has no USER.
        "user": f"{account.pw_uid}:{account.pw_gid}",
        "working_dir": home,
        "labels": {f"{LABEL}.user": username, f"{LABEL}.course": course, f"{LABEL}.environment": environment},
    }
    host = {
        # Kept when it ends, so that poll() reads why (State.OOMKilled, ExitCode) before removing it.
        "auto_remove": False,
        "network_mode": "host",
        "memswap_limit": memory,  # no swap beyond the limit: over it, the OOM killer
        "pids_limit": pids_limit,
        "cap_drop": ["ALL"],  # a learner's server needs no capability, as any unprivileged process
        "security_opt": ["no-new-privileges"],  # no setuid or file capability raises it either
        "read_only": True,  # the image is the course's: nobody changes it from inside
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,mode=1777,size={tmp_size}"},
    }
    teams = teams or {}
    if teams:
        host["group_add"] = [str(gid) for gid in sorted(set(teams.values()))]
    env = {"HOME": home, "USER": account.pw_name, "LOGNAME": account.pw_name, "SHELL": shell}
    return ContainerPlan(
        image=image,
        mem_limit=memory,
        cpu_limit=float(cpus),
        volumes={home: {"bind": home, "mode": "rw"}, **{f: {"bind": f, "mode": "rw"} for f in sorted(teams)}},
        create=create,
        host=host,
        env=env,
    )


def server_env(hub_env: dict, plan: ContainerPlan) -> dict[str, str]:
    """The container's environment: what JupyterHub gives a server (its own token, URLs, OAuth
    client), Spawner.environment, and the learner's identity; nothing of the hub's own."""
    env = {k: str(v) for k, v in hub_env.items() if k not in DROPPED_ENV}
    env.update(plan.env)
    return env
