"""An environment's spec as the builder sees it: environment.yaml (strict schema), the lock's pins
with their hashes, the learner side of this project that goes into every image, and the hash of
all that, which names the image (``localhost/ailys-<env>:<hash12>``).

The hash is taken over parsed, normalised data, not the files' bytes, and only over what goes
into the image: a comment or whitespace edit of environment.yaml or of the lock's comments
(``# via ...``), a new title or smoke test keep the tag; a changed pin, hash, Debian package,
kernel, learner file or build recipe makes a new one.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path

from hub_config.catalogue import CatalogueError, Problem, _load
from hub_config.schema.environment import Environment

from . import IMAGE_PREFIX, REPO, SPECS_DIR, environments

# Bumped when the build recipe (images/build.py) changes what an image holds for the same spec.
RECIPE = 1
# The learner side of this project: the exchange client and what it imports of ours.
LEARNER_ENTRY = "grading/exchange/client.py"
# nbgrader's learner side at its first request: a server extension of learners' servers.
LEARNER_EXTENSION = "grading/learner_extension.py"
OUR_PACKAGES = ("grading", "hub_config")
LEARNER_CONFIG = "spawners/jupyter-config/learner"
IMAGE_LEARNER_CONFIG = "share/ailys-hub/jupyter-config/learner"  # under IMAGE_PREFIX
# A team server's config, put before the learner's (spawners/team_server.py): its sibling.
TEAM_CONFIG = "spawners/jupyter-config/team"
IMAGE_TEAM_CONFIG = "share/ailys-hub/jupyter-config/team"

# The JupyterLab status bar's footprint item (footprint/labextension/), as `make deps` built it
# into the environment running this code; in an image under the same path of IMAGE_PREFIX.
LABEXTENSION = Path(sys.prefix) / "share/jupyter/labextensions/@ailys/footprint"
IMAGE_LABEXTENSION = "share/jupyter/labextensions/@ailys/footprint"

# The fields of environment.yaml that change what an image holds.
IMAGE_FIELDS = {"suite", "debian", "kernels"}

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==([A-Za-z0-9._+!-]+)$")
_HASH = re.compile(r"^--hash=sha256:([0-9a-f]{64})$")


class SpecError(CatalogueError):
    """The spec is invalid; ``problems`` names each file, key and reason."""


@dataclasses.dataclass(frozen=True)
class Pin:
    name: str  # normalised (PEP 503): lowercase, runs of -_. as one -
    version: str
    hashes: tuple[str, ...]  # sha256 hex, sorted


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str, path: Path = Path("requirements.lock")) -> list[Pin]:
    """The pins of a hash-checking lock (``name==version \\`` then ``--hash=sha256:...`` lines), or
    SpecError naming each bad line: pip --require-hashes would refuse the same file, but only
    minutes into a build."""
    problems: list[Problem] = []
    pins: list[Pin] = []
    # Join continuation lines and drop comments, keeping the number of each requirement's first line.
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            logical.append((start, pending.strip()))
        pending = ""
    seen: set[str] = set()
    for number, line in logical:
        requirement, *options = line.split()
        where = f"line {number}"
        match = _PIN.match(requirement)
        if requirement.startswith("-") or not match:
            problems.append(
                Problem(path, where, f"{requirement!r} is not a pinned requirement (name==version)")
            )
            continue
        name = normalise(match[1])
        hashes = []
        for option in options:
            if found := _HASH.match(option):
                hashes.append(found[1])
            else:
                problems.append(
                    Problem(path, where, f"{option!r}: only --hash=sha256:<hex> may follow a pin")
                )
        if not hashes:
            problems.append(
                Problem(path, where, f"{requirement} has no --hash (regenerate the lock: docs/images.md)")
            )
        if name in seen:
            problems.append(Problem(path, where, f"{name} is pinned twice"))
        seen.add(name)
        pins.append(Pin(name, match[3], tuple(sorted(hashes))))
    if not pins and not problems:
        problems.append(Problem(path, "", "pins no package"))
    if problems:
        raise SpecError(problems)
    return pins


def _imports(source: Path, repo: Path) -> set[Path]:
    """Files of our packages that ``source`` imports (absolute or relative imports)."""
    module = source.relative_to(repo).with_suffix("").parts
    package = module[:-1] if source.name != "__init__.py" else module[:-1]
    found: set[Path] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        names: list[tuple[str, ...]] = []
        if isinstance(node, ast.Import):
            names = [tuple(a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            stem = (*base, *(node.module.split(".") if node.module else ()))
            names = [stem] + [(*stem, a.name) for a in node.names]
        for parts in names:
            if not parts or parts[0] not in OUR_PACKAGES:
                continue
            for candidate in (repo.joinpath(*parts).with_suffix(".py"), repo.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    found.add(candidate)
    return found


def learner_files(repo: Path = REPO) -> dict[str, Path]:
    """What this project puts into every image, by path under IMAGE_PREFIX: the modules that
    grading/exchange/client.py and grading/learner_extension.py import of ours, followed to the
    end, with their packages' __init__.py (a partial ``grading`` and ``hub_config`` in
    site-packages), and the learner Jupyter config."""
    todo, done = [repo / LEARNER_ENTRY, repo / LEARNER_EXTENSION], set()
    while todo:
        path = todo.pop()
        if path in done:
            continue
        done.add(path)
        todo.extend(_imports(path, repo) - done)
        for parent in path.relative_to(repo).parents[:-1]:  # each package on the way
            init = repo / parent / "__init__.py"
            if init not in done:
                todo.append(init)
    site = "lib/python3.11/site-packages"
    files = {f"{site}/{p.relative_to(repo)}": p for p in done}
    for source, target in ((LEARNER_CONFIG, IMAGE_LEARNER_CONFIG), (TEAM_CONFIG, IMAGE_TEAM_CONFIG)):
        config = repo / source
        for path in sorted(config.rglob("*")):
            if path.is_file():
                files[f"{target}/{path.relative_to(config)}"] = path
    return dict(sorted(files.items()))


@dataclasses.dataclass(frozen=True)
class Spec:
    env: str
    folder: Path
    environment: Environment
    pins: tuple[Pin, ...]
    files: dict[str, Path]  # under IMAGE_PREFIX -> source
    hash: str
    # The built status-bar extension, under IMAGE_PREFIX -> source (empty: not built, no build).
    labextension: dict[str, Path] = dataclasses.field(default_factory=dict)

    @property
    def hash12(self) -> str:
        return self.hash[:12]

    @property
    def tag(self) -> str:
        return f"localhost/ailys-{self.env}:{self.hash12}"

    @property
    def lock(self) -> Path:
        return self.folder / "requirements.lock"


def spec_hash(env: str, environment: Environment, pins: list[Pin], files: dict[str, Path]) -> str:
    data = {
        "recipe": RECIPE,
        "env": env,
        "prefix": str(IMAGE_PREFIX),
        # What goes into the image only: a new title or smoke test is not a new image.
        "environment": environment.model_dump(mode="json", include=IMAGE_FIELDS),
        "lock": [[p.name, p.version, list(p.hashes)] for p in sorted(pins, key=lambda p: p.name)],
        "files": {dest: hashlib.sha256(src.read_bytes()).hexdigest() for dest, src in files.items()},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def labextension_files(built: Path = LABEXTENSION) -> dict[str, Path]:
    """The built extension's files by path under IMAGE_PREFIX; none when it is not built."""
    if not (built / "package.json").is_file():
        return {}
    found = sorted(p for p in built.rglob("*") if p.is_file())
    return {f"{IMAGE_LABEXTENSION}/{p.relative_to(built)}": p for p in found}


def load_spec(env: str, specs_dir: Path = SPECS_DIR, repo: Path = REPO) -> Spec:
    """The spec of images/<env>/, or SpecError naming every problem (an unknown env names those
    that exist)."""
    folder = specs_dir / env
    if not (folder / "environment.yaml").is_file():
        known = ", ".join(environments(specs_dir)) or "none"
        raise SpecError([Problem(specs_dir, env, f"no such environment (environments: {known})")])
    problems: list[Problem] = []
    environment = pins = None
    try:
        environment = _load(folder / "environment.yaml", Environment)
    except CatalogueError as err:
        problems.extend(err.problems)
    lock = folder / "requirements.lock"
    try:
        pins = parse_lock(lock.read_text(encoding="utf-8"), lock)
    except OSError as err:
        problems.append(Problem(lock, "", f"cannot be read: {err.strerror} (generate it: docs/images.md)"))
    except SpecError as err:
        problems.extend(err.problems)
    if problems:
        raise SpecError(problems)
    files, labext = learner_files(repo), labextension_files()
    digest = spec_hash(env, environment, pins, {**files, **labext})  # a rebuilt extension: a new tag
    return Spec(env, folder, environment, tuple(pins), files, digest, labext)
