"""Log-in records: one line per successful login, ``{"time": <UTC, ISO 8601>, "method": ...}``, in
<data_dir>/logins/<name>.jsonl (folder 0700, file 0600), appended by the authenticator after every
check passed (hub_config/login/rules.py). Never a password, a token or an address: when and how
someone logged in is what a data protection officer may be asked, and nothing more is kept.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from .places import LOGINS, check_person

# The package of the authenticator that checked the password or token, to the method recorded.
_METHODS = {"nativeauthenticator": "local", "ldapauthenticator": "ldap", "oauthenticator": "oidc"}


def login_method(authenticator) -> str:
    """local, ldap or oidc: from the JupyterHub authenticator class below ours in the bases."""
    for cls in type(authenticator).__mro__:
        method = _METHODS.get(cls.__module__.partition(".")[0])
        if method:
            return method
    return type(authenticator).__name__


def record_login(data_dir: Path, name: str, method: str, now: dt.datetime | None = None) -> Path:
    """Append one record; O_APPEND keeps lines whole when two logins of one person race."""
    folder = Path(data_dir) / LOGINS
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{check_person(name)}.jsonl"
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    line = json.dumps({"time": moment.isoformat(timespec="seconds"), "method": method}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return path


def read_logins(path: Path) -> list[dict]:
    """The records of one file; a line cut short (a full disk) is skipped, not fatal."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
