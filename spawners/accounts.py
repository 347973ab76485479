"""Which Unix accounts a learner's server may run as: a person's, never a system account's.

A course file names its learners, and each spawner runs their servers as the account of that name
(a process, ``sbatch --uid``, a container's uid). The schema refuses system account names (root,
munge, slurm...), but an account made with ``useradd --system`` under another name, or one a site
has that the list does not know, is caught only here: by its uid, before anything starts.
"""

from __future__ import annotations

import pwd

from jupyterhub.spawner import SpawnException
from traitlets import HasTraits, Integer

# The kernel's overflow uid (/proc/sys/kernel/overflowuid), Debian's nobody: above any min_uid,
# and the account the demo gallery's kernels run as.
NOBODY_UID = 65534


class AccountRefused(SpawnException):
    def __init__(self, message: str):
        super().__init__(message, reason="system-account", status_code=403)
        self.jupyterhub_message = message  # what the learner reads, instead of str(exception)


def system_account_reason(account: pwd.struct_passwd, min_uid: int) -> str:
    """Why a learner's server must not run as ``account`` ("" when it may)."""
    if account.pw_uid < min_uid:
        return f"its uid {account.pw_uid} is below the site's min_uid ({min_uid}): it is a system account"
    if account.pw_uid == NOBODY_UID:
        return f"it is the unprivileged nobody account (uid {NOBODY_UID}), shared with the hub's services"
    if account.pw_gid == 0:
        return "its primary group is root (gid 0)"
    return ""


class SystemAccountGuard(HasTraits):
    """Mixed into each spawner: ``refuse_system_account`` before any process or job starts."""

    min_uid = Integer(
        1000,
        min=1,
        help="Smallest uid a learner's server may run as. An account below it (root, munge, slurm, one "
        "made with useradd --system), nobody (65534) or one whose primary group is root is refused "
        "before anything starts. Set by the site file's spawner.min_uid.",
    ).tag(config=True)

    def refuse_system_account(self, account: pwd.struct_passwd) -> None:
        why = system_account_reason(account, self.min_uid)
        if why:
            name = account.pw_name
            self.log.error(
                "Refused to start a server for %s as Unix account %s: %s", self.user.name, name, why
            )
            raise AccountRefused(
                f"Not started: the Unix account {account.pw_name} cannot run a learner's server: {why}. "
                "Ask the site's administrators."
            )
