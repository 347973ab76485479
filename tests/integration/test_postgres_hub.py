"""The hub on a real PostgreSQL server (database_url: postgresql://...), not SQLite."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import need
from tests.services import postgres as pg
from tests.services.hub import RunningHub, course

pytestmark = [pytest.mark.postgres, pytest.mark.hub]

# names no other test uses: learners get Unix accounts of these names while the hub runs
COURSES = [course("pgdata", ["prof-pg"], ["pia", "quentin"])]


@pytest.fixture
def server(output_dir):
    need(pg.missing() is None, pg.missing() or "")
    with pg.PostgresServer(log=output_dir / "postgres.log") as running:
        yield running


def test_the_test_server_admits_only_the_hubs_role_with_its_password(server):
    assert server.sql("SELECT current_user, inet_server_addr()::text") == [("hub", "127.0.0.1/32")]
    db = pg.driver()
    with pytest.raises(db.OperationalError, match="password authentication failed"):
        db.connect(host="127.0.0.1", port=server.port, user="hub", password="wrong", dbname="hub")
    with pytest.raises(db.OperationalError, match="no pg_hba.conf entry"):  # the superuser: socket only
        db.connect(host="127.0.0.1", port=server.port, user="postgres", password="", dbname="hub")


def test_hub_keeps_its_state_in_postgresql_across_a_restart(server, output_dir):
    hub = RunningHub(COURSES, site={"database_url": server.url})
    try:
        hub.start()
        pia = hub.login("pia")
        hub.spawn(pia, "pia")
        status = pia.get("/user/pia/api/status")
        assert status.status_code == 200 and "started" in status.json()

        # JupyterHub's tables and NativeAuthenticator's are in PostgreSQL, with this hub's rows
        tables = {t for (t,) in server.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {
            "users",
            "groups",
            "user_group_map",
            "spawners",
            "oauth_clients",
            "users_info",
            "alembic_version",
        } <= tables
        users = {name for (name,) in server.sql("SELECT name FROM users")}
        assert {"pia", "quentin", "prof-pg"} <= users
        members = server.sql(
            "SELECT g.name, u.name FROM groups g JOIN user_group_map m ON m.group_id = g.id "
            "JOIN users u ON u.id = m.user_id WHERE g.name LIKE %s",
            ("%-pgdata",),
        )
        assert sorted(members) == [
            ("course-pgdata", "pia"),
            ("course-pgdata", "quentin"),
            ("staff-pgdata", "prof-pg"),
        ]
        logins = dict(server.sql("SELECT username, is_authorized FROM users_info"))
        people = ("pia", "quentin", "prof-pg")
        assert {name: logins.get(name) for name in people} == dict.fromkeys(people, True)
        (stored,) = server.sql("SELECT password FROM users_info WHERE username = 'pia'")[0]
        assert hub.passwords["pia"].encode() not in bytes(stored)  # a bcrypt hash, not the password
        clients = {c for (c,) in server.sql("SELECT identifier FROM oauth_clients")}
        assert {"jupyterhub", "jupyterhub-user-pia"} <= clients
        (server_row,) = server.sql(
            "SELECT s.server_id IS NOT NULL FROM spawners s JOIN users u ON u.id = s.user_id "
            "WHERE u.name = 'pia' AND s.name = ''"
        )
        assert server_row == (True,)
        assert not (hub.data / "jupyterhub.sqlite").exists()
        assert not list(hub.data.glob("*.sqlite*"))

        # the state lives in PostgreSQL: a new hub process finds pia's running server there
        learner_pids = sorted(p.pid for p in hub.learner_processes())
        hub.stop_hub()
        hub.start_hub()
        assert hub.server_ready("pia")
        assert pia.get("/user/pia/api/status").status_code == 200
        assert sorted(p.pid for p in hub.learner_processes()) == learner_pids  # the same server
        assert hub.login("pia").cookies.get("jupyterhub-session-id")  # her login, from users_info

        # the password in database_url must not reach the logs (JupyterHub writes [redacted])
        for log in (hub.data / "logs").glob("*.log"):
            text = log.read_text(errors="replace")
            assert server.password not in text, f"{log} holds the database password"
    finally:
        if (hub.data / "logs" / "hub.log").exists():
            shutil.copy(hub.data / "logs" / "hub.log", output_dir / "hub.log")
        hub.stop()
