"""What AILyS Hub holds on a person, and the commands that give it to them or erase it (the GDPR
rights of access and erasure), with the site's retention policy for trainees.

What the platform holds on a person, and where (``places.Places``):

- their home: <data_dir>/<spawner.local.home_root>/<name> (local spawner; on the Slurm site the
  home is the cluster's, not the hub's) and the Unix account the local spawner made for it (comment
  "AILyS Hub user", spawners/local.py);
- their submissions and the feedback on them, in the exchange's store:
  <data_dir>/exchange/<course>/{submissions,feedback}/<assignment>/<name>/ (grading/exchange/storage.py);
- the copies grading makes of them: <data_dir>/grading/<course>/{submitted,autograded,feedback}/<name>/;
- their grades, graded cells and graders' comments, and their student row, in each course's
  nbgrader gradebook (grading/courses.py gradebook_url);
- the hub's records: their user row (created, last activity, groups, roles, servers, API tokens,
  sessions) and NativeAuthenticator's users_info row (password hash, e-mail) in the hub database;
- their extra time and extensions in <data_dir>/grading/<course>/accommodations.json;
- their trainee record in <data_dir>/cohorts/<slug>.json, and the directory or provider groups
  recorded in <data_dir>/rosters/{ldap,oidc}.json (hub_config/roster.py);
- their log-in records, <data_dir>/logins/<name>.jsonl (``logins``);
- archives the retention policy made: <data_dir>/archives/<name>-<date>.tar.zst;
- on demonstration sites, a generated password in <data_dir>/secrets/demo-logins.txt;
- their name in the site and course files (admins, instructors, learners, grades.emails), in git.

Modules: places (where), holdings (what, for one person), export, forget, retention, and the
readers of each store: hub_records, gradebooks, records (cohorts, rosters), logins.
"""

from .export import export
from .forget import Report, forget
from .logins import record_login
from .retention import run_retention

__all__ = ["Report", "export", "forget", "record_login", "run_retention"]
