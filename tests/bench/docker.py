"""`make bench-docker`: learners' containers of our docker site against a stock DockerSpawner.

Ours is the real hub and proxy of a docker site (tests.services.hub.RunningHub, spawner.kind
docker). Stock is JupyterHub with DockerSpawner configured by hand as its documentation says for
host networking (DockerSpawner.get_ip_and_port's docstring), the same course limits, starting
its own proxy. Both talk to one podman service (tests.services.podman) and run the same image
(the python-ml image of `ailys image build`, tests.services.images.course_image): ours as each
learner's uid with our server command, stock as the image's root with jupyterhub-singleuser
--allow-root, which is what a hand-written configuration does with an image that has no USER.

A spawn is timed from the start request to the hub's ready event (tests/bench/spawn.py), the
two hubs alternating. Figures: 10 sequential spawns (`spawn-docker`), a burst of 10 at once until
all are ready (`spawn-docker-burst-10`), each idle container's memory after the burst, from its
cgroup (`idle-container-rss`: memory.usage_in_bytes less the page cache, as `docker stats`
counts it), and the image's size against a docker-stacks scipy-notebook-style build of the same
packages (`image-size`, MB; see image_sizes()).

    .venv/bin/python -m tests.bench.docker [--runs 10] [--burst 10] [--burst-runs 1] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.spawn import SpawnFailed, Stock, Target, line, median, say, sequential, table
from tests.services.podman import PodmanService

IDLE_SECONDS = 5
RESOURCES = {"cpus": 1, "memory": "1G"}

STOCK_DOCKER = """\
# DockerSpawner on the host's network, as its documentation says (get_ip_and_port's docstring),
# with a free port per server since they share the host's ports.
from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port


class HostNetworkDockerSpawner(DockerSpawner):
    async def start(self):
        self.port = random_port()
        return await super().start()

    async def get_ip_and_port(self):
        return self.host_ip, self.port


c.JupyterHub.spawner_class = HostNetworkDockerSpawner
c.DockerSpawner.client_kwargs = {{"base_url": "unix://{socket}"}}
c.DockerSpawner.image = {image!r}
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.remove = True
c.DockerSpawner.network_name = "host"
c.DockerSpawner.use_internal_ip = True  # no port_bindings: docker-py refuses them on the host network
c.DockerSpawner.ip = "127.0.0.1"
c.DockerSpawner.name_template = "stock-{{username}}"
c.DockerSpawner.mem_limit = "1G"
c.DockerSpawner.cpu_limit = 1.0
c.Spawner.cmd = ["/opt/ailys-env/bin/jupyterhub-singleuser"]
c.Spawner.args = ["--allow-root"]
c.Spawner.default_url = "/lab"
"""


class OursDocker(Target):
    name = "ours"

    def __init__(self, users: list[str], socket: Path) -> None:
        from tests.bench.spawn import Ours

        super().__init__(users)
        site = {
            "spawner": {"kind": "docker", "docker": {"socket": str(socket)}},
            "culler": {"enabled": False},
        }
        self._ours = Ours(users, site=site, resources=RESOURCES)
        self.token, self.url, self.log_file = self._ours.token, self._ours.url, self._ours.log_file
        self.prefix = "ailys-"

    def start(self) -> None:
        self._ours.start()

    def hub_pid(self) -> int:
        return self._ours.hub_pid()

    def stop_all(self, keep: bool) -> None:
        self._ours.stop_all(keep)


class StockDocker(Stock):
    def __init__(self, users: list[str], socket: Path, image: str) -> None:
        super().__init__(users)
        # the stock bench's hand-written config, less its local-process spawner
        text = self.config.read_text()
        text = "\n".join(
            line
            for line in text.splitlines()
            if "SimpleLocalProcessSpawner" not in line
            and "spawner_class" not in line
            and not line.startswith("c.Spawner.cmd")
            and not line.startswith("c.Spawner.args")
        )
        self.config.write_text(text + "\n" + STOCK_DOCKER.format(socket=socket, image=image))
        self.prefix = "stock-"


def container_memory(podman: PodmanService, prefix: str) -> list[float]:
    """MB of each running container named ``prefix``...: its cgroup's usage less the page cache."""
    done = podman.podman("ps", "--format=json", f"--filter=name=^{prefix}")
    sizes = []
    for c in json.loads(done.stdout or "[]"):
        info = json.loads(podman.podman("inspect", c["Id"]).stdout)[0]
        cgroup = Path("/sys/fs/cgroup/memory") / info["State"]["CgroupPath"].lstrip("/")
        if not cgroup.is_dir():  # cgroup v2
            cgroup = Path("/sys/fs/cgroup") / info["State"]["CgroupPath"].lstrip("/")
            usage = int((cgroup / "memory.current").read_text())
            stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
            cache = int(stat.get("inactive_file", 0))
        else:
            usage = int((cgroup / "memory.usage_in_bytes").read_text())
            stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
            cache = int(stat.get("total_inactive_file", 0))
        sizes.append((usage - cache) / 2**20)
    return sizes


async def burst(target, podman: PodmanService) -> tuple[float | None, int, list[float]]:
    """Every user's server started at once: seconds until the last is ready, failures, idle MB."""
    ready: list[float] = []
    t0 = time.perf_counter()

    async def one(http, user):
        try:
            await target.spawn(http, user)
            ready.append(time.perf_counter() - t0)
        except SpawnFailed as err:
            say(f"    FAILED: {err}")

    async with target.client() as http:
        await asyncio.gather(*(one(http, u) for u in target.users))
        await asyncio.sleep(IDLE_SECONDS)
        memory = container_memory(podman, target.prefix)
        await asyncio.gather(*(target.stop(http, u) for u in target.users))
    return (max(ready) if ready else None), len(target.users) - len(ready), memory


def image_sizes(image) -> dict[str, float]:
    """MB: the python-ml image in podman's store, and a docker-stacks scipy-notebook-style build of
    the same packages, which cannot be built here (no registry): estimated as our image plus what
    its frugal steps removed, as the build measured it (BuiltImage.freed_bytes: apt lists and
    caches, docs, locales, the packages' test suites), which a docker-stacks build keeps. A lower
    bound: docker-stacks also installs conda and mamba with a Python of their own, not counted."""
    freed = sum((getattr(image, "freed_bytes", None) or {}).values())
    return {"ours": image.size_bytes / 1e6, "stock": (image.size_bytes + freed) / 1e6}


async def bench(targets, podman, image, args) -> None:
    load_before = os.getloadavg()[0]
    say(f"sequential spawns, alternating {' / '.join(t.name for t in targets)}")
    seq, seq_failures = await sequential(targets, args.runs)
    totals = {t.name: [] for t in targets}
    failures = dict.fromkeys(totals, 0)
    memory = {t.name: [] for t in targets}
    for run in range(args.burst_runs):
        for target in targets if run % 2 == 0 else targets[::-1]:
            say(f"  {target.name}: {args.burst} simultaneous spawns, run {run + 1}")
            total, failed, mb = await burst(target, podman)
            if total is not None:
                totals[target.name].append(total)
            failures[target.name] += failed
            memory[target.name] += mb
            ready = f"{total:.2f} s" if total is not None else "never"
            say(f"    ready in {ready}, {failed} failed; idle container median {median(mb):.1f} MB")
            await asyncio.sleep(2)

    table(
        f"spawn-docker: one spawn, start request to ready, {args.runs} alternating runs",
        "s",
        seq,
        failures=seq_failures,
    )
    line("spawn-docker", seq, args.runs, failures=seq_failures)
    title = f"spawn-docker-burst-{args.burst}: {args.burst} simultaneous spawns, until all are ready"
    table(title, "s", totals, failures=failures)
    line(f"spawn-docker-burst-{args.burst}", totals, args.burst_runs, failures=failures)
    table(
        f"idle-container-rss: each container's cgroup memory, idle {IDLE_SECONDS} s after a burst",
        "MB",
        memory,
        "{:.1f}",
    )
    line("idle-container-rss", memory, len(memory["ours"]), "{:.1f}")
    sizes = image_sizes(image)
    print(f"\nimage-size: python-ml ({image.tag}) against a scipy-notebook-style build of its packages (MB)")
    print(f"  ours {sizes['ours']:.0f}  stock-style {sizes['stock']:.0f} (estimate: image_sizes() says how)")
    print(
        f"bench: image-size ours={sizes['ours']:.0f} stock={sizes['stock']:.0f} ratio={sizes['ours'] / sizes['stock']:.2f} n=1"
    )
    print(
        f"\n  machine: {os.cpu_count()} CPUs, 1-minute load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end (other work on the machine skews every figure)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="sequential spawns of each")
    parser.add_argument("--burst", type=int, default=10, help="simultaneous spawns (distinct users)")
    parser.add_argument("--burst-runs", type=int, default=1, help="bursts of each")
    parser.add_argument("--keep", action="store_true", help="keep the hubs' logs, as on a failure")
    args = parser.parse_args()
    from tests.services.images import course_image

    image = course_image("python-ml")
    users = [f"benchd{i:02d}" for i in range(1, args.burst + 1)]
    workdir = Path(tempfile.mkdtemp(prefix="ailys-bench-"))
    workdir.chmod(0o711)
    tempfile.tempdir = str(workdir)
    from images.store import DEFAULT_ROOT

    podman = PodmanService(DEFAULT_ROOT).start()
    targets = [OursDocker(users, podman.socket), StockDocker(users, podman.socket, image.tag)]
    failed = True
    try:
        for target in targets:
            target.start()
        asyncio.run(bench(targets, podman, image, args))
        failed = False
    finally:
        for target in targets:
            target.stop_all(keep=args.keep or failed)
        for c in json.loads(podman.podman("ps", "--all", "--format=json").stdout or "[]"):
            if any(n.startswith(("ailys-benchd", "stock-benchd")) for n in c["Names"]):
                podman.podman("rm", "--force", "--time=0", c["Id"])
        podman.stop()
        if args.keep or failed:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
