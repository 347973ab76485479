"""The hub's records of a person: their row in the hub database (created, last activity, groups,
roles, servers, API tokens, encrypted auth state) and NativeAuthenticator's row beside it
(``users_info``: the bcrypt hash of a local password, an e-mail, 2FA settings).

Read straight from the hub database (read only: the export works whether the hub runs or not).
Deleted through the hub's REST API while the hub runs, with the course-sync service's token
(admin:users, the one `ailys courses sync` uses): the hub then stops the person's servers, drops
them from its memory and calls the authenticator's delete_user, which removes the users_info row.
Only a stopped hub has its database changed directly, since a running one keeps users in memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from urllib.parse import quote

import httpx

from .. import hub_language
from .places import Places, check_person


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.replace(tzinfo=dt.UTC).isoformat() if moment else None  # the hub keeps naive UTC


@contextlib.contextmanager
def _session(url: str):
    """A session on the hub database, or None if there is none yet (never creates one)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        yield None
        return
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            yield db
    finally:
        engine.dispose()


def _user_info_class(db):
    """NativeAuthenticator's table, if this hub has one (a site without local accounts may not)."""
    from sqlalchemy import inspect

    if not inspect(db.get_bind()).has_table("users_info"):
        return None
    from nativeauthenticator.orm import UserInfo

    return UserInfo


def hub_record(places: Places, name: str) -> dict | None:
    """What the hub database holds on ``name``; None if it holds nothing. Token values are never
    stored by the hub (hashes only), and neither hashes nor the password hash are exported."""
    from jupyterhub import orm

    name = check_person(name)
    with _session(places.database_url) as db:
        if db is None:
            return None
        user = orm.User.find(db, name)
        UserInfo = _user_info_class(db)
        info = UserInfo.find(db, name) if UserInfo else None
        language = hub_language.kept_if_any(db, name)
        if user is None and info is None and language is None:
            return None
        record: dict = {"name": name}
        if language:
            record["language"] = language  # chosen with the pages' switch (hub_config/hub_language.py)
        if user is not None:
            record.update(
                admin=bool(user.admin),
                created=_iso(user.created),
                last_activity=_iso(user.last_activity),
                groups=sorted(g.name for g in user.groups),
                roles=sorted(r.name for r in user.roles),
                servers=[
                    {"name": s.name, "started": _iso(s.started), "last_activity": _iso(s.last_activity)}
                    for s in user._orm_spawners
                ],
                api_tokens=[
                    {
                        "note": t.note,
                        "created": _iso(t.created),
                        "last_activity": _iso(t.last_activity),
                        "expires_at": _iso(t.expires_at),
                        "scopes": list(t.scopes or []),
                    }
                    for t in user.api_tokens
                ],
                auth_state="held, encrypted" if user.encrypted_auth_state else None,
            )
        if info is not None:
            record["local_account"] = {
                "password": "a bcrypt hash is held (not exported: it would let the holder of this file "
                "try to guess the password)",
                "email": info.email,
                "is_authorized": bool(info.is_authorized),
                "has_2fa": bool(info.has_2fa),
            }
        return record


def running_hub(catalogue):
    """The hub's API with the course-sync token if the hub answers; None if it is stopped."""
    from ..sync import hub_api_for

    api = hub_api_for(catalogue)
    try:
        api.client.get("", timeout=5).raise_for_status()
    except httpx.HTTPError:
        return None
    return api


def delete_hub_user(places: Places, name: str, hub) -> list[str]:
    """Remove ``name``'s hub records; what was removed, as lines. ``hub``: the running hub's API
    (``running_hub``), or None when the hub is stopped."""
    name = check_person(name)
    held = hub_record(places, name)
    if held is None:
        return []
    if hub is not None and "created" in held:
        # Stops their servers first; the authenticator's delete_user takes its users_info row.
        r = hub.client.delete(f"users/{quote(name, safe='')}", timeout=300)
        if r.status_code not in (204, 404):
            raise RuntimeError(f"the hub refused to delete user {name}: {r.status_code} {r.text[:300]}")
    _delete_rows(places, name)  # whatever is left: a stopped hub, an authenticator without delete_user
    if hub_record(places, name) is not None:
        raise RuntimeError(f"{places.database_url}: the records of {name} are still there after deletion")
    how = "through the running hub" if hub is not None else "in the database of the stopped hub"
    removed = []
    if "created" in held:
        removed.append(
            f"hub user {name}: account, groups, roles, {len(held['servers'])} server records, "
            f"{len(held['api_tokens'])} API tokens, browser sessions ({how})"
        )
    if "local_account" in held:
        removed.append(f"local account of {name}: password hash, e-mail, 2FA settings ({how})")
    if "language" in held:
        removed.append(f"the language {name} chose for the pages ({held['language']}, hub database)")
    return removed


def _delete_rows(places: Places, name: str) -> None:
    from jupyterhub import orm

    with _session(places.database_url) as db:
        if db is None:
            return
        user = orm.User.find(db, name)
        if user is not None:  # spawners, tokens, OAuth codes, memberships go with it (ORM cascades)
            db.delete(user)
        UserInfo = _user_info_class(db)
        for info in db.query(UserInfo).filter(UserInfo.username == name).all() if UserInfo else ():
            db.delete(info)
        hub_language.forget(db, name)
        db.commit()
