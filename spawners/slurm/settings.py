"""The Slurm spawner's settings (``c.SlurmSpawner.<name>``, as the site's applier sets them:
hub_config/appliers/spawner.py): where Slurm is and how to reach it, the job's shape, the
provisioning commands, and the course image. spawner.py holds what it does with them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from traitlets import Dict, Enum, Float, Integer, List, Unicode, default
from traitlets.config import Configurable

from ..launch_form import TEMPLATES
from .container import IMAGE_SINGLEUSER, RUNTIMES


class SlurmSpawnerSettings(Configurable):
    """Mixed into SlurmSpawner, whose name its settings are configured under."""

    node_addresses = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Node name (as squeue reports it) to the address where the hub reaches that node, e.g. "
        "{'node1': '127.0.0.2'}. A node not listed is reached by its name (DNS).",
    ).tag(config=True)

    slurm_env = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Environment of the Slurm commands (sbatch, squeue, scancel, sacct), added to a fixed "
        "PATH and LANG, e.g. {'SLURM_CONF': '/etc/slurm/slurm.conf'}. Variables of env_keep whose "
        "names start with SLURM_ are taken from the hub's environment as well. They are also "
        "set in the job, so that Slurm commands in a learner's terminal reach the same cluster.",
    ).tag(config=True)

    slurm_path = Unicode(
        "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        help="PATH in which the Slurm commands (and sudo, for exec_prefix) are found.",
    ).tag(config=True)

    exec_prefix = Unicode(
        "",
        help="Command that runs each Slurm command as the learner, formatted with {username}, e.g. "
        "'sudo -n -u {username} --' for a non-root hub with a sudoers rule (see the package's "
        "documentation, spawners/slurm/__init__.py). Empty: the hub is root and submits with "
        "sbatch --uid/--gid.",
    ).tag(config=True)

    start_timeout = Integer(
        1800,
        help="Seconds a start may take, queue wait included, before the hub gives up and cancels "
        "the job. Set per site (spawner.start_timeout in the site file): a busy partition may need hours.",
    ).tag(config=True)

    progress_interval = Float(
        2.0,
        help="Seconds between refreshes of the queue position, estimated start and pending reason "
        "shown while the job waits; also the longest pause between squeue checks of a pending job.",
    ).tag(config=True)

    startup_poll_interval = Float(
        0.25,
        help="First pause (seconds) between squeue checks of a new job; it grows by half at each check "
        "up to progress_interval. The job's port report ends the wait at once, whatever this is.",
    ).tag(config=True)

    ready_poll_interval = Float(
        0.05,
        help="Seconds between checks that the started server answers on its node. start() returns only "
        "once it does, so the hub's own check (0.2 s backoff, doubling) succeeds at once.",
    ).tag(config=True)

    slurm_command_timeout = Float(
        30.0,
        help="Seconds after which a Slurm command is killed and its answer taken as unknown. squeue "
        "itself gives up after about 10 s of retries when slurmctld does not answer.",
    ).tag(config=True)

    cancel_retry_timeout = Float(
        60.0,
        help="Seconds during which stop() retries scancel when it fails (slurmctld down). A job still "
        "not cancelled is remembered in the spawner's state and cancelled at its next start.",
    ).tag(config=True)

    stop_wait = Float(
        30.0,
        help="Seconds stop() waits for a cancelled job to leave the queue (Slurm's KillWait included).",
    ).tag(config=True)

    end_record_wait = Float(
        10.0,
        help="Seconds to wait for sacct to record the end of a job (slurmctld reports it to slurmdbd "
        "asynchronously) before explaining it from scontrol (while slurmctld still holds the job, "
        "MinJobAge) or squeue's last answer instead.",
    ).tag(config=True)

    batch_template = Unicode(
        str(TEMPLATES / "slurm-job.sh.j2"),
        help="Jinja2 template file of the batch script. Its context: job_name, comment, partition, "
        "account, qos, reservation, cpus, memory_mb, gpus, time_limit (D-HH:MM:SS), home, output, "
        "environment (sorted name, value pairs), python (job_python), launcher (the source of "
        "spawners/slurm/launcher.py), command (the server's argv list) and container (None, or the "
        "ch-run line's ch_run, image, home, binds and home_tmpfs: spawners/slurm/container.py); "
        "filters sh (shell-quote) and sh_join.",
    ).tag(config=True)

    form_template = Unicode(
        str(TEMPLATES / "slurm-form.html.j2"),
        help="Jinja2 template file of the launch form (HTML, autoescaped).",
    ).tag(config=True)

    job_output = Unicode(
        "{home}/.ailys-hub-slurm-%j.log",
        help="The job's output file ({home}: the learner's home; %j: the job id, as sbatch expands it).",
    ).tag(config=True)

    job_name_template = Unicode(
        "ailys-{course}",
        help="Job name ({course}: the course slug). The energy report groups jobs by it.",
    ).tag(config=True)

    job_comment_template = Unicode(
        "ailys-hub:course={course}",
        help="Job comment ({course}: the course slug). sacct keeps it only with "
        "AccountingStoreFlags=job_comment in slurm.conf; squeue and scontrol always show it.",
    ).tag(config=True)

    job_lang = Unicode("C.UTF-8", help="LANG in the job.").tag(config=True)

    job_path = Unicode(
        help="PATH in the job. Default: the folder of the server command's program (the project's "
        "environment), then /usr/local/bin:/usr/bin:/bin.",
    ).tag(config=True)

    @default("job_path")
    def _job_path_default(self):
        first = self.cmd[0] if self.cmd else sys.executable
        folders = [str(Path(first).parent)] if os.path.isabs(first) else []
        return ":".join([*folders, "/usr/local/bin", "/usr/bin", "/bin"])

    provision_command = List(
        Unicode(),
        help="Command (argv, each item formatted with {username} and {course}) run before the start of a "
        "learner who has no Unix account yet: on the Slurm site, the trainees' provisioning through sudo "
        "(hub_config/provision.py, docs/design-notes.md). It makes the account or fails with the reason "
        "on stderr, which the learner reads. Empty (the default): such a learner is refused.",
    ).tag(config=True)

    team_provision_command = List(
        Unicode(),
        help="Command (argv, each item formatted with {username}) run before each start of a team "
        "server: on the Slurm site, `ailys-provision-trainee team NAME` through sudo (hub_config/"
        "provision_team.py), which makes or refreshes the team account, its group's members, its Slurm "
        "association and the team folder. Empty (the default): the team account must exist already.",
    ).tag(config=True)

    provision_timeout = Float(
        120.0,
        help="Seconds the provisioning command may take (useradd, sacctmgr) before it counts as failed.",
    ).tag(config=True)

    job_python = Unicode(
        help="Python that runs the job's launcher. Default: the server command's program when it is "
        "a Python, else the hub's own (the same environment, reachable from the nodes).",
    ).tag(config=True)

    @default("job_python")
    def _job_python_default(self):
        first = self.cmd[0] if self.cmd else ""
        return first if os.path.isabs(first) and Path(first).name.startswith("python") else sys.executable

    container = Enum(
        list(RUNTIMES),
        default_value="none",
        help="Where the learner's server runs on the node. none: in the hub's environment (job_python, "
        "cmd), which the nodes must reach at the same path; charliecloud: inside the HPC image "
        "(SquashFS) of the course's environment, run by ch-run with the learner's home bound in "
        "(spawners/slurm/container.py). A course whose image is not built is refused before submitting.",
    ).tag(config=True)

    image_store = Unicode(
        "",
        help="Root of the image store (images/store.py) whose HPC images the nodes run, at a path "
        "every node reads (on Mesolys, a shared file system). Empty: the store's default, "
        "var/images of the checkout.",
    ).tag(config=True)

    ch_run = Unicode(
        "/usr/bin/ch-run",
        help="ch-run on the nodes (Debian's charliecloud-runtime, built with SquashFUSE), for container "
        "charliecloud.",
    ).tag(config=True)

    container_cmd = List(
        Unicode(),
        default_value=[IMAGE_SINGLEUSER],
        help="The server's command inside the image (Spawner.args follow), for container charliecloud. "
        "The hub's configuration gives the one of the hub's own servers, run by the image's Python.",
    ).tag(config=True)
