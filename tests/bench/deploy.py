"""`make bench-deploy`: ansible/site.yml against the test target (tests/ansible/target.py), the
first run from nothing (a fresh copy of the cached Debian base; pip installs from the kept
wheelhouse, npm from its registry) and then a run that changes nothing (goal: under 30 s).
There is no stock tool to compare with: the figures are ours alone.

    .venv/bin/python -m tests.bench.deploy
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.ansible.deploy import Deploy
from tests.ansible.target import base_rootfs, wheelhouse


def main() -> int:
    base_rootfs()  # the caches: made before the clock starts, as a test run finds them
    wheelhouse()
    with tempfile.TemporaryDirectory(prefix="d18-bench-") as work:
        deploy = Deploy(Path(work)).start()
        try:
            first = deploy.apply()
            deploy.wait_for_hub()
            noop = deploy.apply()
        finally:
            deploy.stop()
    print(f"{'run':<14}{'seconds':>10}{'changed':>10}")
    print(f"{'first':<14}{first.seconds:>10.1f}{first.changed:>10}")
    print(f"{'no change':<14}{noop.seconds:>10.1f}{noop.changed:>10}")
    print(f"bench: deploy-first {first.seconds:.1f}s")
    print(f"bench: deploy-noop {noop.seconds:.1f}s goal=30s changed={noop.changed}")
    return 0 if noop.changed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
