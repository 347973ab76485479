"""`make bench-slurm`: learner servers as Slurm jobs, ours against stock batchspawner, and against
our own local spawn.

One real Slurm cluster (tests/services/slurm.py: two slurmd on 127.0.0.2 and 127.0.0.3) and three
hubs side by side for the whole bench, every measure alternating between them:

- slurm: our site of kind `slurm` (hub_config, spawners/slurm/), started as `ailys up` starts it;
- stock: JupyterHub with batchspawner's own SlurmSpawner on the same cluster, configured as its
  README says (sudo -E -u as exec_prefix, env_keep, absolute paths), nothing tuned;
- local: our local site (spawners/local.py), the figure a Slurm spawn should come close to.

A spawn is timed from the start request to the ready event of the hub's progress stream, then the
server must answer through the proxy (tests/bench/spawn.py, Target.spawn); a spawn that fails is
counted (the table's `failed`, the lines' `failures_*`), not timed. Users differ per hub
(bsl01, bst01, blo01), with Unix and Slurm accounts made for the bench and removed at the end.

    .venv/bin/python -m tests.bench.slurm [--runs 10] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import shutil
import tempfile
from pathlib import Path

from tests.bench.spawn import BIN, Ours, Stock, line, say, sequential, table
from tests.services import remove_unix_user, unix_user
from tests.services.slurm import SlurmCluster

# The same scheduler settings as the Slurm tests: schedule at submit time, not 3 s later (both
# hubs gain from it alike; Mesolys's own values are its admins' choice).
CLUSTER_CONFIG = "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0"
RESOURCES = {"partition": "cpu", "cpus": 1, "memory": "512M", "walltime": "1h"}

STOCK_SLURM_CONFIG = """
import batchspawner  # noqa: F401  registers the API handler through which the job reports its port
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.Spawner.cmd = [{singleuser!r}]
c.SlurmSpawner.batchspawner_singleuser_cmd = {batch_singleuser!r}
c.SlurmSpawner.req_partition = "cpu"
c.SlurmSpawner.req_memory = "512M"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_runtime = "1:00:00"
# JupyterHub 6 passes no PATH or SLURM_CONF to spawners unless listed (../shared/notes/real-services.md)
c.Spawner.env_keep = ["PATH", "LANG", "LC_ALL", "SLURM_CONF"]
c.Spawner.start_timeout = 120
# The test cluster's node names do not resolve: every node is on this host, and the server listens
# on the hub's default Spawner.ip (127.0.0.1), so the hub reaches it there.
c.SlurmSpawner.state_exechost_exp = "127.0.0.1"
"""


class StockSlurm(Stock):
    def __init__(self, users: list[str], cluster: SlurmCluster) -> None:
        super().__init__(users)
        self.name = "stock"
        self.cluster = cluster
        # replace the stock local spawner's lines of tests/bench/spawn.py's config with batchspawner's
        text = "\n".join(
            line
            for line in self.config.read_text().splitlines()
            if "SimpleLocalProcessSpawner" not in line
            and "spawner_class" not in line
            and "Spawner.cmd" not in line
            and "--allow-root" not in line
        )
        self.config.write_text(
            text
            + STOCK_SLURM_CONFIG.format(
                singleuser=str(BIN / "jupyterhub-singleuser"),
                batch_singleuser=str(BIN / "batchspawner-singleuser"),
            )
        )

    def start(self) -> None:
        os.environ["SLURM_CONF"] = str(self.cluster.slurm_conf)  # the stock hub passes it on (env_keep)
        try:
            super().start()
        finally:
            del os.environ["SLURM_CONF"]


def slurm_site(cluster: SlurmCluster) -> dict:
    return {
        "spawner": {
            "kind": "slurm",
            "slurm": {"slurm_conf": str(cluster.slurm_conf), "node_addresses": cluster.node_addresses},
        }
    }


async def bench(targets, runs: int) -> None:
    load_before = os.getloadavg()[0]
    say(f"sequential spawns, alternating {' / '.join(t.name for t in targets)}")
    times, failed = await sequential(targets, runs)
    title = f"spawn-slurm: one spawn, start request to ready, {runs} alternating runs"
    table(title, "s", times, failures=failed)
    ours, stock, local = times["ours"], times["stock"], times["local"]
    line("spawn-slurm", {"ours": ours, "stock": stock}, runs, failures=failed)
    vs_local = {"ours": failed["ours"], "stock": failed["local"]}
    line("spawn-slurm-vs-local", {"ours": ours, "stock": local}, runs, failures=vs_local)
    print(
        f"  (spawn-slurm-vs-local: ours is our Slurm site, stock our local site)\n"
        f"  machine: {os.cpu_count()} CPUs, 1-minute load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end (other work on the machine skews every figure)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="spawns of each hub")
    parser.add_argument("--keep", action="store_true", help="keep the hubs' logs and the cluster's")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench-slurm starts a Slurm cluster and makes Unix accounts: run it as root")
    # Learners' jobs must traverse the bench's folder to reach their homes.
    workdir = Path(tempfile.mkdtemp(prefix="ailys-bench-"))
    workdir.chmod(0o711)
    tempfile.tempdir = str(workdir)
    cluster = SlurmCluster(workdir / "slurm", extra_config=CLUSTER_CONFIG)
    accounts: list[pwd.struct_passwd] = []
    targets = []
    failed = True
    try:
        cluster.start()
        for name in ("bsl01", "bst01"):  # the local hub makes its own learner's account
            accounts.append(unix_user(name, workdir))
            cluster.add_user(name)
        targets = [
            Ours(["bsl01"], site=slurm_site(cluster), resources=RESOURCES),
            StockSlurm(["bst01"], cluster),
            Ours(["blo01"], name="local"),
        ]
        for target in targets:
            target.start()
        asyncio.run(bench(targets, args.runs))
        failed = False
    finally:
        for target in targets:
            target.stop_all(keep=args.keep or failed)  # a failure's logs are worth reading
        for account in accounts:
            remove_unix_user(account)
        if args.keep or failed:
            shutil.copytree(cluster.root / "log", workdir / "slurm-logs", dirs_exist_ok=True)
        cluster.stop()
        if args.keep or failed:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
