"""The first process of a learner's Slurm job: picks a free port, reports it to the hub, then becomes
the server.

The job learns its node only when it starts, so the server cannot be given a port in advance. This
file binds a free port, posts it to the hub's ``/hub/api/batchspawner`` with the server's own token
(spawners/slurm/port_report.py takes it), points JUPYTERHUB_SERVICE_URL at it, and execs the server
command (``argv[1:]``), so the server stays the job's main process and scancel or the time limit stop
it directly.

Standard library only: it runs with whatever Python the job has, inside any course image. The batch
script (spawners/templates/slurm-job.sh.j2) carries its source and runs it with ``python -c``, so no
path of the hub's tree needs to exist on the node, nor be bound into the image (spawners/slurm/
container.py: under ch-run, this is the image's Python, and the server the image's).
"""

import json
import os
import socket
import sys
import urllib.request
from urllib.parse import urlsplit, urlunsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def report_port(port: int) -> None:
    request = urllib.request.Request(
        os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/batchspawner",
        data=json.dumps({"port": port}).encode(),
        method="POST",
        headers={
            "Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"],
            "Content-Type": "application/json",
        },
    )
    urllib.request.urlopen(request, timeout=60).close()


def main(argv: list[str]) -> None:
    port = free_port()
    url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    os.environ["JUPYTERHUB_SERVICE_URL"] = urlunsplit(url._replace(netloc=f"{url.hostname}:{port}"))
    try:
        report_port(port)
    except Exception as error:  # noqa: BLE001 (whatever the failure, the job ends saying it)
        sys.exit(f"ailys-hub: the hub did not take this server's port {port}: {error}")
    print(f"ailys-hub: server of job {os.environ.get('SLURM_JOB_ID')} on port {port}", flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
