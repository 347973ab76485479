"""Course environments (images/<env>/): one pinned spec each, built by `ailys image build` into an
OCI image in podman's store and a SquashFS image for HPC nodes (docs/images.md)."""

from pathlib import Path

# Where the environment lives inside every image: a venv of Debian's /usr/bin/python3.
IMAGE_PREFIX = Path("/opt/ailys-env")
# The spec folders: images/<env>/environment.yaml, requirements.in, requirements.lock.
SPECS_DIR = Path(__file__).resolve().parent
REPO = SPECS_DIR.parent


def environments(specs_dir: Path = SPECS_DIR) -> list[str]:
    """The environments that exist: folders of specs_dir holding an environment.yaml (the same
    rule as hub_config.catalogue.environments, which course validation uses)."""
    return sorted(p.parent.name for p in Path(specs_dir).glob("*/environment.yaml"))
