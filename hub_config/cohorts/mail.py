"""Invitations by e-mail, in French then English in one message, through the site's SMTP server
(site: smtp). The server's password is read from its file when mail goes out, never kept."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

from .. import i18n, roster
from ..catalogue import Catalogue
from ..schema import Course, Smtp
from .invitations import Invitation, link
from .store import CohortError

SENDER_NAME = "AILyS Hub"


def compose(catalogue: Catalogue, course: Course, invitation: Invitation) -> EmailMessage:
    """One trainee's invitation: the link, until when it works, and when their access opens."""
    smtp = catalogue.site.smtp
    opens, closes = roster.access_window(
        course, catalogue.site.authentication.trainee_access, catalogue.site.timezone
    )
    bodies, subjects = [], []
    for lang in ("fr", "en"):
        title = getattr(course.title, lang)
        _ = i18n.gettext(lang)
        subjects.append(_("Your access to {course}").format(course=title))
        bodies.append(
            i18n.render(
                "invitation-mail.txt",
                lang,
                first_name=invitation.trainee["first_name"],
                username=invitation.trainee["username"],
                course=title,
                link=link(catalogue, invitation.token),
                expires=invitation.expires.astimezone(opens.tzinfo),
                opens=opens,
                closes=closes,
                instructors=", ".join(course.instructors),
            ).strip()
        )
    message = EmailMessage()
    message["From"] = formataddr((SENDER_NAME, smtp.sender))
    message["To"] = formataddr(
        (f"{invitation.trainee['first_name']} {invitation.trainee['last_name']}", invitation.trainee["email"])
    )
    message["Subject"] = f"AILyS Hub : {subjects[0]} / {subjects[1]}"
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2])
    message["Content-Language"] = "fr, en"
    message.set_content(f"{bodies[0]}\n\n-- English --\n\n{bodies[1]}\n")
    return message


def smtp_password(smtp: Smtp, site_dir: Path) -> str | None:
    if smtp.password_file is None:
        return None
    path = smtp.password_file if smtp.password_file.is_absolute() else site_dir / smtp.password_file
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise CohortError(f"smtp.password_file {path} cannot be read: {err.strerror}") from None


def send(catalogue: Catalogue, messages: list[EmailMessage], timeout: float = 30) -> dict[str, str]:
    """Send every message in one connection; returns the addresses the server refused, with why.
    CohortError if the server cannot be reached or refuses us."""
    smtp = catalogue.site.smtp
    if smtp is None:
        raise CohortError(
            f"site {catalogue.site.name} has no smtp section ({catalogue.site_file}): "
            "`ailys cohort invitations COURSE` prints the links to hand out instead"
        )
    where = f"{smtp.host}:{smtp.port} (smtp.security {smtp.security})"
    password = smtp_password(smtp, catalogue.site_file.parent)
    refused: dict[str, str] = {}
    try:
        if smtp.security == "tls":
            server = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            server = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with server:
            if smtp.security == "starttls":
                server.starttls(context=ssl.create_default_context())
            if smtp.username:
                server.login(smtp.username, password or "")
            for message in messages:
                try:
                    server.send_message(message)
                except smtplib.SMTPRecipientsRefused as err:
                    for address, (code, reason) in err.recipients.items():
                        refused[address] = f"{code} {reason.decode(errors='replace')}"
    except smtplib.SMTPAuthenticationError as err:
        raise CohortError(
            f"the mail server {where} refused the login of {smtp.username}: {err.smtp_code}"
        ) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as err:
        raise CohortError(f"cannot send mail through {where}: {err}") from None
    return refused
