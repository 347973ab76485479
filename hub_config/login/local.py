"""Local accounts: NativeAuthenticator, with who may log in and their roles from the catalogue.

Why NativeAuthenticator: it is JupyterHub's own project for local accounts; it keeps bcrypt
hashes in the hub database (a hub password is not a shell login on the service node, unlike
PAM), locks an account after repeated failures, refuses short and common passwords, lets users
change their password, and works whether or not the hub runs as root. Sign-up is off: people
come from course folders, and trainees from their cohort's invitations.
"""

from __future__ import annotations

import os
from pathlib import Path

import bcrypt
from jupyterhub.auth import Authenticator
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import ChangePasswordAdminHandler, ChangePasswordHandler
from nativeauthenticator.orm import UserInfo
from traitlets import Unicode

from ..cohorts.invitations import ROUTE as invitation_route
from ..cohorts.page import InvitationHandler
from ..schema import is_reserved
from ..secrets import read_demo_logins
from .rules import CatalogueRules


class LocalLogin(CatalogueRules, NativeAuthenticator):
    demo_logins_file = Unicode(
        "", help="If set, accounts listed there (username password) are created on start."
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._seed_demo_accounts()

    _demo_file_seeded: tuple | None = None  # the file's (mtime, size, inode) when last seeded

    def _seed_demo_accounts(self) -> None:
        if not self.demo_logins_file or not Path(self.demo_logins_file).exists():
            return
        # At every login: an unchanged file has nothing new to seed (a query per person saved,
        # ~0.3 ms each: make bench-login). The sync adding a line, or forget removing one, changes it.
        st = os.stat(self.demo_logins_file)
        if (st.st_mtime_ns, st.st_size, st.st_ino) == self._demo_file_seeded:
            return
        for name, password in read_demo_logins(Path(self.demo_logins_file)).items():
            if UserInfo.find(self.db, name) is None and not is_reserved(name):
                hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
                self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
        self.db.commit()
        self._demo_file_seeded = (st.st_mtime_ns, st.st_size, st.st_ino)

    def get_handlers(self, app):
        # JupyterHub's own login page: NativeAuthenticator 1.3's login handler fails under
        # JupyterHub 6 (it uses the removed handler.statsd). Its authenticate() still does the
        # lockout; sign-up and approval pages are left out (people come from course folders).
        return Authenticator.get_handlers(self, app) + [
            (r"/change-password", ChangePasswordHandler),
            (r"/change-password/([^/]+)", ChangePasswordAdminHandler),
            (invitation_route, InvitationHandler),  # trainees set their password (cohorts/page.py)
        ]

    async def authenticate(self, handler, data):
        self._seed_demo_accounts()  # people of a course added since start (sync adds their line)
        return await super().authenticate(handler, data)
