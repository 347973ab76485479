"""Learner servers as containers: DockerSpawner on podman's Docker-compatible API, one container
per learner, of their course's environment image (images/, `ailys image build`).

One module per job:

- ``spawner.py``: ``ContainerSpawner`` (start, poll, stop, progress), its settings and saved state;
- ``container.py``: what a container is made of: limits, uid, home, security options, env (pure);
- ``launcher.py``: the container's first process (standard library only): runs the server, and
  ends the session when the kernel's OOM killer has killed one of its processes;
- ``words.py``: what learners read: limits, and why a container ended (pure);
- ``errors.py``: ``ContainerSpawnError``, a refusal the learner reads as it is.

The launch form and request are the Slurm site's (spawners/slurm/request.py and
templates/slurm-form.html.j2), with cpus and memory only: a course's resources become the
container's enforced limits. docs/containers.md tells how it runs and what survives a restart.
"""

from .errors import ContainerSpawnError
from .spawner import ContainerSpawner

__all__ = ["ContainerSpawnError", "ContainerSpawner"]
