"""The hub's invitation page, /hub/invitation/<token>: a trainee sets their password there.

GET shows the form when the token is valid, otherwise says whether it was used or expired and
whom to ask. POST (with JupyterHub's _xsrf check) applies the password rules of local accounts,
uses the invitation up, writes the bcrypt hash in NativeAuthenticator's table, then logs the
trainee in through the authenticator, so every rule of a login holds (a closed access window
shows its dates instead). The token never reaches a log: the request's path is replaced before
JupyterHub logs it, and the page sends no Referer onwards.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import bcrypt
from jupyterhub.handlers import BaseHandler
from nativeauthenticator.orm import UserInfo

from .. import i18n
from ..hub_language import hub_language
from .invitations import look_up, use

SCRUBBED = "/invitation/[secret]"


class InvitationHandler(BaseHandler):
    async def prepare(self):
        # Before anything logs the request: JupyterHub's access log, its xsrf warnings.
        prefix = self.request.path.rsplit("/invitation/", 1)[0]
        self.request.path = self.request.uri = prefix + SCRUBBED
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        await super().prepare()

    # --- what the page needs -----------------------------------------------------------------

    @property
    def lang(self) -> str:
        return hub_language(self)

    def page(self, state: str, found=None, status: int = 200, **extra) -> None:
        catalogue = self.authenticator.catalogue()
        ns = {"state": state, "login_url": self.settings["login_url"], **extra}
        if found is not None and found.slug:
            course = next((c for c in catalogue.courses if c.slug == found.slug), None)
            ns["username"] = found.trainee["username"]
            if found.when:  # shown in the site's time zone, as course dates are
                ns["when"] = found.when.astimezone(ZoneInfo(catalogue.site.timezone))
            if course:
                ns["course"] = getattr(course.title, self.lang)
                ns["instructors"] = ", ".join(course.instructors)
        ns.setdefault("minimum_length", catalogue.site.authentication.minimum_password_length)
        self.set_status(status)
        self.finish(self.render_template("invitation.html", sync=True, **ns))

    def password_problem(self, password: str, confirmation: str) -> str | None:
        _ = i18n.gettext(self.lang)
        shortest = self.authenticator.catalogue().site.authentication.minimum_password_length
        if password != confirmation:
            return _("The two passwords differ: type the same one twice.")
        if len(password) < shortest:
            return _("This password is too short: at least {n} characters.").format(n=shortest)
        common = getattr(self.authenticator, "is_password_common", None)
        if getattr(self.authenticator, "check_common_password", True) and common and common(password):
            return _("This password is among the most common ones: choose another.")
        return None

    # --- requests ------------------------------------------------------------------------------

    async def get(self, token: str):
        found = look_up(self.authenticator.catalogue().data_dir, token)
        status = {"valid": 200, "unknown": 404}.get(found.state, 410)
        self.page(found.state, found, status)

    async def post(self, token: str):
        data_dir = self.authenticator.catalogue().data_dir
        found = look_up(data_dir, token)
        if found.state != "valid":
            return self.page(found.state, found, 404 if found.state == "unknown" else 410)
        password = self.get_body_argument("password", "", strip=False)
        problem = self.password_problem(password, self.get_body_argument("confirmation", "", strip=False))
        if problem:
            return self.page("valid", found, 400, error=problem)
        found = use(data_dir, token)  # once only: a second request finds it used
        if found.state != "valid":
            return self.page(found.state, found, 410)
        name = found.trainee["username"]
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        info = UserInfo.find(self.db, name)
        if info is None:
            self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
        else:
            info.password, info.is_authorized = hashed, True
        self.db.commit()
        self.log.info("Invitation used: %s set their password", name)
        closed = self.authenticator.catalogue().closed_for(name)
        if closed:
            opens, closes = next(
                ((o, c) for s, o, c in closed.windows if s == found.slug), closed.windows[0][1:]
            )
            return self.page("closed", found, 403, opens=opens, closes=closes)
        user = await self.login_user({"username": name, "password": password})
        if user is None:  # the rules of a login refused it: the login page says why
            return self.redirect(self.settings["login_url"])
        self.redirect(self.get_next_url(user))
