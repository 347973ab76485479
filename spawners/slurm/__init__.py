r"""Learner servers as Slurm jobs on Mesolys, queue-aware and resilient.

One module per job:

- ``spawner.py``: ``SlurmSpawner`` (start, poll, stop, progress), its settings and saved state;
- ``client.py``: the Slurm client, the one command runner (timeouts, as the learner) for sbatch,
  squeue, scancel, sacct and scontrol, and the parsing of their answers;
- ``request.py``: the launch request: the form's fields, resolved against the learner's courses (pure);
- ``words.py``: what learners read: resources, why a job is pending, why it ended (pure);
- ``batch.py``: the batch script, from templates/slurm-job.sh.j2 (pure);
- ``launcher.py``: the job's first process (standard library only): free port, report, exec the server;
- ``container.py``: with ``container = "charliecloud"``, the server inside the course's HPC image
  (ch-run, the learner's home bound in), and the look-up of that image in the image store;
- ``port_report.py``: the hub's handler of that report, installed by ``install_port_handler()``;
- ``errors.py``: ``SlurmSpawnError``, a refusal the learner reads as it is.

One launch profile per course the learner belongs to (``profiles``), the job's environment written
out in full in the batch script, the job submitted as the learner, and the failures batchspawner
users report most handled:

- a failing squeue (slurmctld down or slow, munge hiccup, anything but a clear answer) never makes
  ``poll()`` report the server gone (batchspawner #171, #174, #315): only squeue saying the job has
  ended, or no longer knowing it, does;
- the job, its node's address and the server's port are saved in the hub's database as soon as they
  are known, so a restarted hub (even after kill -9) finds the running job and its URL again
  (batchspawner #236) and never submits a second one;
- a job that ends outside the hub (scancel, time limit, node failure) is noticed at the next poll;
  sacct's State, ExitCode and Reason are logged and shown to the learner on the launch form;
- while the job is pending, the spawn page shows its place in its partition's queue, Slurm's
  estimated start and the pending reason, refreshed every ``progress_interval`` seconds;
- ``start()`` returns as soon as the server answers, so the hub's own check succeeds at once.

Not batchspawner's base class
-----------------------------
``SlurmSpawner`` derives from JupyterHub's ``Spawner``, not from batchspawner's ``SlurmSpawner``.
It used to, and overrode everything batchspawner's base does (start, poll, stop, progress, the
commands, the state, the script), keeping only two traits (``job_id`` and ``ip = "0.0.0.0"``, now
its own). Inheriting brought batchspawner's ``req_*`` and ``batch_*`` settings that do nothing
here, its ``batch_script`` trait shadowed by a method, and, on import, its port handler that
sets any attribute a learner's token posts (see below). batchspawner is no longer imported by the
hub: it stays a test dependency, the stock spawner that ``make bench-slurm`` compares against, and
JupyterHub's version cap in pyproject.toml no longer follows from our code (docs/design-notes.md).

Submitting as the learner
-------------------------
A root hub (the test and ``make up SITE=slurm`` layout) submits with ``sbatch --uid=USER
--gid=GROUP``, cancels with ``scancel --user=USER`` and reads squeue, sacct and scontrol as root.

The production layout on a Mesolys service node is a hub that does not run as root: an account
``jupyterhub`` with a sudoers rule that lets it run the five Slurm commands of client.py as
learners (members of one group), and nothing else::

    # /etc/sudoers.d/ailys-hub (mode 0440, checked with visudo -cf before it is put there)
    Cmnd_Alias AILYS_HUB_SLURM = /usr/bin/sbatch, /usr/bin/squeue, /usr/bin/scancel, \
                                 /usr/bin/sacct, /usr/bin/scontrol
    Defaults!AILYS_HUB_SLURM env_keep += "SLURM_CONF"
    Defaults:jupyterhub !requiretty
    jupyterhub ALL = (%mesolys-learners) NOPASSWD: AILYS_HUB_SLURM

    # hub configuration (the site file's spawner.slurm.exec_prefix)
    c.SlurmSpawner.exec_prefix = "sudo -n -u {username} --"

Every Slurm command then runs as ``sudo -n -u <learner> -- <command>``: ``-n`` fails at once where
the rule does not apply (the learner then reads that the hub may not run Slurm commands as them,
and what sudo said). No ``-E`` (the rule has no SETENV): the batch script carries the job's whole
environment (``--export=NONE``), and of the commands' own environment sudo keeps LANG, sets PATH
to its secure_path and keeps SLURM_CONF through env_keep (not needed when slurm.conf is the
system's). docs/design-notes.md explains each line; tests/integration/test_slurm_sudo.py runs it.
An empty ``exec_prefix`` means "as root, with --uid".

The port report
---------------
A job learns its node only when it starts, so the server picks its own free port and posts it to
the hub's ``/hub/api/batchspawner`` (the URL batchspawner's batchspawner-singleuser uses), which
``PortReportHandler`` serves: a port and nothing else, from a server that is starting. The hub's
configuration installs it with ``install_port_handler()`` (hub_config/jupyterhub_config.py for a
Slurm site; a hand-written configuration calls it too); importing this package installs nothing.

This package depends on the Jupyter ecosystem (JupyterHub, traitlets, Jinja2) and, of hub_config,
only on the dependency-free hub_config/units.py: the hub configuration sets its traits.
"""

from .errors import SlurmSpawnError
from .port_report import PortReportHandler, install_port_handler
from .spawner import SlurmSpawner

__all__ = ["PortReportHandler", "SlurmSpawnError", "SlurmSpawner", "install_port_handler"]
