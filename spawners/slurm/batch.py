"""The batch script of a learner's job, rendered from a Jinja2 template file (data only:
spawners/templates/slurm-job.sh.j2) with every value checked first. Pure."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import jinja2

from hub_config.units import slurm_megabytes, slurm_time

from .container import Charliecloud
from .errors import SlurmSpawnError
from .request import SBATCH_WORD, Launch

# The job's first process (see its docstring); its source goes into the script, so that the node
# needs nothing of the hub's tree. Before it, as the learner, their team-<team> links in their home
# (spawners/team_links.py, which does nothing without AILYS_TEAM_LINKS): both are standard library
# only and run as one ``python -c``, each its own ``if __name__ == "__main__"`` in turn.
LAUNCHER = Path(__file__).parent / "launcher.py"
TEAM_LINKS = Path(__file__).parent.parent / "team_links.py"


def launcher_source() -> str:
    return TEAM_LINKS.read_text() + "\n\n" + LAUNCHER.read_text()


def _config_error(message: str) -> SlurmSpawnError:
    return SlurmSpawnError(f"Not started: {message}", reason="config", status_code=500)


def render_batch_script(
    template: str | Path,
    launch: Launch,
    *,
    home: str,
    output: str,
    job_name: str,
    comment: str,
    environment: dict[str, str],
    python: str,
    command: list[str],
    container: Charliecloud | None = None,
) -> str:
    """The script sbatch reads: ``launch``'s resources, the job's whole ``environment``, then the
    launcher, run by ``python``, which becomes ``command`` (the server); with ``container``, both
    inside the course's image, run by ch-run (``python`` and ``command`` are then the image's)."""
    for what, value in (("home", home), ("output file", output)):
        if not value or any(c.isspace() for c in value):
            raise _config_error(f"the {what} {value!r} has spaces, which sbatch cannot take.")
    for what, value in (("job name", job_name), ("comment", comment)):
        if not SBATCH_WORD.match(value):
            raise _config_error(f"bad {what} {value!r}.")
    for name in environment:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise _config_error(f"bad environment variable name {name!r}.")
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(template).parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    templates.filters["sh"] = lambda v: shlex.quote(str(v))
    templates.filters["sh_join"] = lambda argv: shlex.join(str(a) for a in argv)
    return templates.get_template(Path(template).name).render(
        job_name=job_name,
        comment=comment,
        partition=launch.partition,
        account=launch.account,
        qos=launch.qos,
        reservation=launch.reservation,
        cpus=launch.cpus,
        memory_mb=slurm_megabytes(launch.memory),
        gpus=launch.gpus,
        time_limit=slurm_time(launch.walltime),
        home=home,
        output=output,
        environment=sorted(environment.items()),
        python=python,
        launcher=launcher_source(),
        command=command,
        container=container,
    )
