"""The learner's server inside the course environment's HPC image, run by Charliecloud's ch-run on
the node (``SlurmSpawner.container = "charliecloud"``). Pure, but for the look-up of the image.

The image is the SquashFS that ``ailys image build ENV`` puts in the image store (images/store.py:
``ImageStore(root).current(env).squashfs``); the store must be at a path every node reads at the
same place (on Mesolys, a shared file system). ch-run mounts the SquashFS itself (SquashFUSE built
in: no root, no setuid helper, but /dev/fuse open to users and unprivileged user namespaces), then
runs the launcher with the image's Python, which becomes the image's jupyterhub-singleuser.

- The job's environment, written out in the batch script, passes through ch-run unchanged (it adds
  CH_RUNNING and unsets TMPDIR); the spawner points PATH and JUPYTER_CONFIG_PATH into the image.
- The learner's home is bound at its own path, so notebooks, the exchange and the hub see one home.
  A bind's mount point must exist in the image or be made by ch-run, which it can do only on a
  tmpfs (the image is read-only): under /home, ``--home`` puts a tmpfs over the image's /home
  (ch-run also binds the home at /home/$USER there and sets HOME to it, so HOME is set back);
  under /tmp, the host's /tmp is ch-run's /tmp already (the test clusters' layout). A home
  elsewhere is refused before anything is submitted.
- The image's own /etc/passwd and /etc/group are hidden by ch-run's, which name the learner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import SlurmSpawnError

RUNTIMES = ("none", "charliecloud")

# Inside every course image (the image contract of images/: images.IMAGE_PREFIX).
IMAGE_PREFIX = PurePosixPath("/opt/ailys-env")
IMAGE_PYTHON = str(IMAGE_PREFIX / "bin" / "python3")
IMAGE_SINGLEUSER = str(IMAGE_PREFIX / "bin" / "jupyterhub-singleuser")
IMAGE_JUPYTER_CONFIG = str(IMAGE_PREFIX / "share" / "ailys-hub" / "jupyter-config" / "learner")
IMAGE_PATH = f"{IMAGE_PREFIX}/bin:/usr/local/bin:/usr/bin:/bin"

# Paths on the ch-run line: shell-quoted by the template, but ch-run itself splits --bind at ':'
# and strips quotes and expands $ in --set-env values, so only plain absolute paths are taken.
_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]*$")


@dataclass(frozen=True)
class Charliecloud:
    """The batch script's ch-run line (the template's ``container``)."""

    ch_run: str  # ch-run on the node
    image: str  # the SquashFS of the course's environment
    home: str  # the learner's home, the server's working directory
    binds: tuple[tuple[str, str], ...]  # (host path, path in the container)
    home_tmpfs: bool  # --home: a tmpfs over the image's /home, where the home's mount point is made
    runtime: str = "charliecloud"


def _config_error(message: str) -> SlurmSpawnError:
    return SlurmSpawnError(f"Not started: {message}", reason="config", status_code=500)


def charliecloud(ch_run: str, image: str | Path, home: str) -> Charliecloud:
    """The ch-run line that runs a server in ``image`` with ``home`` bound at its own path; a home
    that ch-run cannot bind into a read-only image, or a path ch-run would misread, is refused."""
    for what, value in (("ch-run", ch_run), ("image", str(image)), ("home", home)):
        if not _PLAIN_PATH.match(value) or "//" in value or "/../" in f"{value}/":
            raise _config_error(f"the {what} path {value!r} cannot be given to ch-run.")
    parts = PurePosixPath(home).parts
    if len(parts) >= 3 and parts[1] == "home":
        home_tmpfs = True
    elif len(parts) >= 3 and parts[1] == "tmp":
        home_tmpfs = False
    else:
        raise _config_error(
            f"your home {home} is neither under /home nor under /tmp, so ch-run cannot bind it into the "
            "course image (docs/slurm-containers.md). Ask the site's administrators."
        )
    return Charliecloud(
        ch_run=ch_run, image=str(image), home=home, binds=((home, home),), home_tmpfs=home_tmpfs
    )


def current_image(store_root: str | Path | None, environment: str | None, course: str) -> Path:
    """The SquashFS in service for ``environment`` in the image store at ``store_root`` (None: the
    store's default), or a refusal naming the command that builds it."""
    from images.store import DEFAULT_ROOT, ImageStore  # the image store; only container sites need it

    if not environment:
        raise _config_error(f"course {course} names no environment (environment: in its course.yaml).")
    image = ImageStore(Path(store_root) if store_root else DEFAULT_ROOT).current(environment)
    if image is None or not Path(image.squashfs).is_file():
        raise SlurmSpawnError(
            f"Not started: the environment {environment} of course {course} has no HPC image yet. "
            f"An administrator builds it with `ailys image build {environment}`.",
            reason="no-image",
            status_code=503,
        )
    return Path(image.squashfs)
