"""Energy and carbon of sessions, Slurm jobs and grading runs (docs/energy.md): the model (model.py),
Slurm accounting (sacct.py), process and cgroup CPU time (sampler.py), records in the hub database
(records.py), collection from sacct (collect.py), the admin report (report.py, cli.py)."""
