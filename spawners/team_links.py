"""The ``team-<team>`` links in a person's home, to their teams' folders (docs/teams.md).

Made by whoever may write in the home: the local and container sites' spawners as root, at each
spawn (spawners/teams.py, TeamHomes), and on the Slurm site the person's own job, where the hub is
not root and the home may be on a file system root cannot write (root squash): the batch script
runs this file's source before the launcher's (spawners/slurm/batch.py), with the links the
spawner gives in AILYS_TEAM_LINKS. So: standard library only, no ``from __future__`` (its source
is put before another's), nothing of the hub's tree imported.
"""

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

LINK_PREFIX = "team-"
LINKS_VARIABLE = "AILYS_TEAM_LINKS"  # {"dir": teams folder, "links": {link name: team folder}}


def link_home(home: Path, links: Mapping[str, Path], teams_dir: Path, uid: int, gid: int) -> None:
    """``team-<team>`` in ``home`` for each of ``links`` (link name -> team folder), and no other
    link into ``teams_dir``: a person who left a team loses its link (and, with the group, access).
    A file or folder of the person's own of that name is theirs: kept, never replaced; no link is
    followed (only read, with readlink)."""
    for entry in home.iterdir():
        if entry.name.startswith(LINK_PREFIX) and entry.is_symlink() and entry.name not in links:
            if Path(os.readlink(entry)).parent == teams_dir:
                entry.unlink()
    for link, folder in links.items():
        path = home / link
        if path.is_symlink() and Path(os.readlink(path)) == folder:
            continue
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            continue  # a file or folder of the person's own by that name: theirs, kept
        path.symlink_to(folder, target_is_directory=True)
        os.lchown(path, uid, gid)


def links_value(teams_dir: str, links: Mapping[str, str]) -> str:
    """AILYS_TEAM_LINKS for a job: the teams folder and each link's team folder."""
    return json.dumps({"dir": str(teams_dir), "links": dict(links)}, sort_keys=True)


def link_from_environment(environ: Mapping[str, str] = os.environ) -> None:
    """In a person's job, as them: the links AILYS_TEAM_LINKS names, in $HOME. A failure is said
    in the job's log and does not keep the server from starting (the folder stays reachable by its
    path)."""
    value = environ.get(LINKS_VARIABLE)
    if not value:
        return
    try:
        given = json.loads(value)
        links = {name: Path(folder) for name, folder in given["links"].items()}
        link_home(Path(environ["HOME"]), links, Path(given["dir"]), os.getuid(), os.getgid())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        print(
            f"ailys-hub: team links not made in {environ.get('HOME')}: {error}", file=sys.stderr, flush=True
        )


if __name__ == "__main__":
    link_from_environment()
