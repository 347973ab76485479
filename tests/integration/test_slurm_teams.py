"""Project teams on the Slurm site, on a real cluster with real accounts: ``ailys-provision-trainee
team NAME`` (hub_config/provision_team.py) makes each team's account, Unix group, Slurm
association and folder as the course files say; a member writes in the team folder from a Slurm
job, another member edits that file from another job, a mentor too, while a learner outside the
team and another team's member get permission denied; a member removed from the file loses the
folder at their next job.

The nodes of the test cluster are 127.0.0.x on this machine: they read its accounts and share its
file system, as Mesolys' nodes share the directory and the team folders' shared file system.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
import yaml

from hub_config.provision import sudoers_arguments
from tests.conftest import OUTPUT, need
from tests.services import remove_unix_user, unix_user
from tests.services.hub import RunningHub, course, hub_xsrf, project_course, server_xsrf, wait_until
from tests.services.slurm import SlurmCluster, cluster_for_tests

pytestmark = [pytest.mark.slurm, pytest.mark.hub]

SLUG = "stm-proj"
RED, BLUE = ["stm-r1", "stm-r2", "stm-r3"], ["stm-b1", "stm-b2"]
OUTSIDE, MENTOR, PROF = "stm-out", "stm-m1", "stm-prof"
PEOPLE = [*RED, *BLUE, OUTSIDE, MENTOR, PROF]
TEAM_RED, TEAM_BLUE = f"team-{SLUG}-red", f"team-{SLUG}-blue"
LEARNERS_GROUP = "stm-learners"  # the learners' group of the hub's Slurm sudo rule
TEAM_UIDS = (63000, 63049)  # above Debian's UID_MAX (60000): useradd never hands these out itself
# The command, by its real path, as root runs it (the hub runs the same through its sudo rule).
PROVISION = os.path.realpath(Path(sys.executable).parent / "ailys-provision-trainee")


def course_file(red: list[str]) -> dict:
    return project_course(SLUG, red, RED, BLUE, OUTSIDE, MENTOR, PROF)


def remove_accounts() -> None:
    """The test's people and team accounts (also those a killed run left), by name."""
    for name in (*PEOPLE, TEAM_RED, TEAM_BLUE):
        with contextlib.suppress(KeyError):
            remove_unix_user(pwd.getpwnam(name))
    for group in (TEAM_RED, TEAM_BLUE, LEARNERS_GROUP):  # 6: not there
        assert subprocess.run(["groupdel", group], capture_output=True).returncode in (0, 6)


@pytest.fixture(scope="module")
def cluster(request):
    # slurmctld looks up a job's groups and sends them to the node (22.05: unless disable_send_gids),
    # caching each user's for GroupUpdateTime (600 s by default): a member added to or removed from a
    # team group is seen by their jobs that much later (docs/teams.md). One second here.
    yield from cluster_for_tests(request, extra_config="GroupUpdateTime=1")


@pytest.fixture(scope="module")
def site(cluster: SlurmCluster):
    """A root-owned site (the command trusts nothing else) with its course and the people."""
    need(shutil.which("setfacl") is not None, "team folders need setfacl (Debian's acl; make test-deps)")
    root = Path(tempfile.mkdtemp(prefix="stm-site-"))
    root.chmod(0o755)  # the accounts walk down to their homes and the team folders
    (root / "courses" / SLUG).mkdir(parents=True)
    (root / "courses" / SLUG / "course.yaml").write_text(yaml.safe_dump(course_file(RED)))
    (root / "team-homes").mkdir()
    site_file = root / "stm.yaml"
    site_file.write_text(
        yaml.safe_dump(
            {
                "name": "stm",
                "data_dir": "data",
                "courses_dir": "courses",
                "teams": {"min_members": 2, "dir": str(root / "teams")},
                "spawner": {
                    "kind": "slurm",
                    "slurm": {
                        "slurm_conf": str(cluster.slurm_conf),
                        "teams": team_accounts(cluster, root / "team-homes"),
                    },
                },
            }
        )
    )
    remove_accounts()
    try:
        subprocess.run(["groupadd", LEARNERS_GROUP], check=True, capture_output=True)
        for name in PEOPLE:
            unix_user(name, root / "home")
            cluster.add_user(name)
        (root / "home").chmod(0o755)
        yield site_file
    finally:
        remove_accounts()
        shutil.rmtree(root, ignore_errors=True)


def team_accounts(cluster: SlurmCluster, home_root: Path) -> dict:
    """spawner.slurm.teams of a site on this cluster: the command run here as root (no sudo)."""
    return {
        "command": f"{PROVISION} --site {{site}}",
        "uid_min": TEAM_UIDS[0],
        "uid_max": TEAM_UIDS[1],
        "learners": LEARNERS_GROUP,
        "slurm_accounts": [cluster.accounts[0]],
        "home_root": str(home_root),
    }


def provision(site_file: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PROVISION, "--site", str(site_file), "team", name], capture_output=True, text=True, timeout=180
    )


def as_job(cluster: SlurmCluster, name: str, code: str) -> tuple[str, str]:
    """``code`` (Python, stdlib) run as ``name`` in a Slurm job, umask 022 (Debian's default, so the
    ACL is what keeps files shared); (the job's state, its output)."""
    home = pwd.getpwnam(name).pw_dir
    script = Path(home) / "job.py"
    script.write_text(
        f"import os, sys\nos.umask(0o022)\ntry:\n    {code}\nexcept PermissionError as e:\n    print('DENIED', e)\n"
    )
    os.chown(script, pwd.getpwnam(name).pw_uid, -1)
    output = f"{home}/job-%j.out"
    job = cluster.sbatch(
        "--output", output, "--chdir", home, "--wrap", f"/usr/bin/python3 {script}", user=name
    )
    info = cluster.wait_job(job, {"COMPLETED", "FAILED"}, timeout=90)
    return info["JobState"], Path(output.replace("%j", job)).read_text()


@pytest.fixture(scope="module")
def teams(site):
    done = {name: provision(site, name) for name in (TEAM_RED, TEAM_BLUE)}
    for name, result in done.items():
        assert result.returncode == 0, f"{name}: {result.stderr}"
    return {name: result.stdout for name, result in done.items()}


def folder(site: Path, team: str) -> Path:
    return site.parent / "teams" / team


# --- the command ---------------------------------------------------------------------------------------


def test_the_command_makes_the_team_account_group_association_and_folder(site, teams, cluster):
    account = pwd.getpwnam(TEAM_RED)
    assert TEAM_UIDS[0] <= account.pw_uid <= TEAM_UIDS[1]
    assert grp.getgrgid(account.pw_gid).gr_name == TEAM_RED  # its primary group is the team's
    assert account.pw_shell == "/usr/sbin/nologin"
    assert account.pw_name in grp.getgrnam(LEARNERS_GROUP).gr_mem  # the hub may submit as it
    assert stat.S_IMODE(os.stat(account.pw_dir).st_mode) == 0o700
    assert sorted(grp.getgrnam(TEAM_RED).gr_mem) == sorted([*RED, MENTOR])
    assert sorted(grp.getgrnam(TEAM_BLUE).gr_mem) == sorted([*BLUE, PROF])
    associations = cluster.run(
        "sacctmgr", "-n", "-P", "show", "association", f"user={TEAM_RED}", "format=account"
    )
    assert associations.stdout.split() == [cluster.accounts[0]]
    red = os.stat(folder(site, TEAM_RED))
    assert (red.st_uid, red.st_gid, stat.S_IMODE(red.st_mode)) == (account.pw_uid, account.pw_gid, 0o2770)
    acl = subprocess.run(
        ["getfacl", "-p", str(folder(site, TEAM_RED))], capture_output=True, text=True
    ).stdout
    assert "default:group::rwx" in acl and "default:other::---" in acl
    assert f"created the team account {TEAM_RED}" in teams[TEAM_RED]


def test_a_second_pass_changes_nothing(site, teams):
    again = provision(site, TEAM_RED)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"team {TEAM_RED} is as the course files say"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("root", "'root' is not a team account name"),
        ("team-x;id", "is not a team account name"),
        (f"team-{SLUG}-green", f"no team of the course files has the account team-{SLUG}-green"),
    ],
)
def test_anything_but_a_team_of_the_files_is_refused(site, teams, name, reason):
    refused = provision(site, name)
    assert refused.returncode == 3 and reason in refused.stderr, refused.stderr


def test_an_account_of_a_team_name_made_by_someone_else_is_never_taken_over(site, teams):
    """A team account named in the files whose account exists outside the team range."""
    uid = pwd.getpwnam(TEAM_BLUE).pw_uid
    moved = subprocess.run(["usermod", "--uid", "1999", TEAM_BLUE], capture_output=True, text=True)
    assert moved.returncode == 0, moved.stderr
    try:
        result = provision(site, TEAM_BLUE)
        assert result.returncode == 3, result
        assert f"{TEAM_BLUE} is already an account (uid 1999) outside the team range" in result.stderr
    finally:
        subprocess.run(["usermod", "--uid", str(uid), TEAM_BLUE], check=True, capture_output=True)


# --- the team folder from Slurm jobs -----------------------------------------------------------------------


def test_members_share_the_team_folder_from_their_jobs_and_others_are_refused(site, teams, cluster):
    notes = folder(site, TEAM_RED) / "notes.txt"
    state, out = as_job(cluster, RED[0], f"open({str(notes)!r}, 'w').write('from r1\\n')")
    assert (state, out) == ("COMPLETED", ""), out
    assert stat.S_IMODE(notes.stat().st_mode) & 0o060 == 0o060  # group rw through the default ACL
    assert notes.stat().st_gid == grp.getgrnam(TEAM_RED).gr_gid  # setgid: the team's group
    # Another member edits that file from another job, then the mentor does.
    for name in (RED[1], MENTOR):
        state, out = as_job(cluster, name, f"open({str(notes)!r}, 'a').write('from {name}\\n')")
        assert (state, out) == ("COMPLETED", ""), f"{name}: {out}"
    assert notes.read_text() == f"from r1\nfrom {RED[1]}\nfrom {MENTOR}\n"
    # A learner of the course outside the team, another team's member and its mentor: refused.
    for name in (OUTSIDE, BLUE[0], PROF):
        state, out = as_job(cluster, name, f"print(open({str(notes)!r}).read())")
        assert out.startswith("DENIED [Errno 13] Permission denied"), f"{name}: {out}"
        state, out = as_job(cluster, name, f"os.listdir({str(folder(site, TEAM_RED))!r})")
        assert out.startswith("DENIED [Errno 13] Permission denied"), f"{name}: {out}"
    assert notes.read_text() == f"from r1\nfrom {RED[1]}\nfrom {MENTOR}\n"


def test_a_member_removed_from_the_file_loses_the_folder_at_their_next_job(site, teams, cluster):
    state, out = as_job(cluster, RED[2], f"print(sorted(os.listdir({str(folder(site, TEAM_RED))!r})))")
    assert (state, out) == ("COMPLETED", "['notes.txt']\n"), out
    course_yaml = site.parent / "courses" / SLUG / "course.yaml"
    course_yaml.write_text(yaml.safe_dump(course_file(RED[:2])))
    try:
        result = provision(site, TEAM_RED)
        assert result.returncode == 0, result.stderr
        assert f"set the members of Unix group {TEAM_RED}: {MENTOR}, {RED[0]}, {RED[1]}" in result.stdout
        assert RED[2] not in grp.getgrnam(TEAM_RED).gr_mem
        state, out = as_job(cluster, RED[2], f"os.listdir({str(folder(site, TEAM_RED))!r})")
        assert out.startswith("DENIED [Errno 13] Permission denied"), out
    finally:
        course_yaml.write_text(yaml.safe_dump(course_file(RED)))
        assert provision(site, TEAM_RED).returncode == 0


# --- through the hub's sudo rule ---------------------------------------------------------------------------

SUDO_HUB = "stm-hub-acct"  # a hub account that is not root
SUDOERS = Path("/etc/sudoers.d/ailys-stm-teams")
SUDOERS_NEW = SUDOERS.with_name(f".{SUDOERS.name}.new")  # sudo skips names with a dot: unseen until renamed


@pytest.fixture(scope="module")
def sudo_hub(site):
    """The account of a non-root hub whose sudo rule allows this one command for this site file
    (the rule of docs/design-notes.md, hub_config.provision.sudoers_arguments)."""
    need(bool(shutil.which("sudo") and shutil.which("visudo")), "the sudo rule needs sudo (make test-deps)")
    SUDOERS.unlink(missing_ok=True)
    subprocess.run(["userdel", SUDO_HUB], capture_output=True)
    system = ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    subprocess.run([*system, SUDO_HUB], check=True, capture_output=True)
    try:
        sbatch = shutil.which("sbatch", path="/usr/sbin:/usr/bin:/sbin:/bin")
        SUDOERS_NEW.write_text(
            f"Cmnd_Alias AILYS_STM_TEAMS = {PROVISION} {sudoers_arguments(site)}\n"
            f"{SUDO_HUB} ALL = (root) NOPASSWD: AILYS_STM_TEAMS\n"
            # The Slurm rule's sbatch, as a learner (a member of the learners' group) only.
            f"Cmnd_Alias AILYS_STM_SLURM = {sbatch}\n"
            f'Defaults!AILYS_STM_SLURM env_keep += "SLURM_CONF"\n'
            f"{SUDO_HUB} ALL = (%{LEARNERS_GROUP}) NOPASSWD: AILYS_STM_SLURM\n"
        )
        SUDOERS_NEW.chmod(0o440)
        checked = subprocess.run(["visudo", "-cf", str(SUDOERS_NEW)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        os.replace(SUDOERS_NEW, SUDOERS)
        yield pwd.getpwnam(SUDO_HUB)
    finally:
        SUDOERS.unlink(missing_ok=True)
        SUDOERS_NEW.unlink(missing_ok=True)
        subprocess.run(["userdel", SUDO_HUB], capture_output=True)


def as_hub(account: pwd.struct_passwd, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sudo", "-n", *argv],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **(env or {})},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=180,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
    )


def test_the_hub_account_runs_it_through_its_sudo_rule_and_nothing_else(site, teams, sudo_hub):
    done = as_hub(sudo_hub, PROVISION, "--site", str(site), "team", TEAM_RED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"team {TEAM_RED} is as the course files say"
    # The command's own refusal, for a team name the files do not have.
    refused = as_hub(sudo_hub, PROVISION, "--site", str(site), "team", f"team-{SLUG}-green")
    assert refused.returncode == 3 and "no team of the course files" in refused.stderr
    # sudo's: any other form never runs.
    for argv in (
        ["team", "root"],
        ["team", "team-x;id"],
        ["team", TEAM_RED, "--help"],
        ["add", TEAM_RED],
    ):
        result = as_hub(sudo_hub, PROVISION, "--site", str(site), *argv)
        assert result.returncode == 1 and result.stderr.startswith("sudo: "), (argv, result)
    other_site = as_hub(sudo_hub, PROVISION, "--site", "/tmp/evil.yaml", "team", TEAM_RED)
    assert other_site.returncode == 1 and other_site.stderr.startswith("sudo: ")


def test_the_hub_account_may_submit_as_the_team_account_through_its_slurm_rule(
    site, teams, sudo_hub, cluster
):
    """The team account is in the learners' group: the hub's Slurm rule lets it submit the team
    server's job as that account (exec_prefix ``sudo -n -u {username} --``), in the team's groups."""
    team = pwd.getpwnam(TEAM_RED)
    out = f"{team.pw_dir}/whoami-%j.out"
    argv = ["-u", TEAM_RED, "--", "sbatch", "--parsable", "--output", out, "--chdir", team.pw_dir]
    done = as_hub(sudo_hub, *argv, "--wrap", "id -un; id -Gn", env={"SLURM_CONF": str(cluster.slurm_conf)})
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip().split(";")[0]
    assert cluster.wait_job(job, {"COMPLETED", "FAILED"}, timeout=90)["JobState"] == "COMPLETED"
    user, groups = Path(out.replace("%j", job)).read_text().splitlines()
    assert user == TEAM_RED and {TEAM_RED, LEARNERS_GROUP} <= set(groups.split())
    # Never as a person outside the learners' group (the mentor, here).
    refused = as_hub(sudo_hub, "-u", MENTOR, "--", "sbatch", "--wrap", "id")
    assert refused.returncode == 1 and refused.stderr.startswith("sudo: "), refused


def test_a_team_gone_from_the_file_has_its_group_emptied_through_the_same_rule(
    site, teams, sudo_hub, cluster
):
    """The course sync runs the same ``team NAME`` for a team account whose team left the files: its
    group loses every member (a kept group would go on granting the folder to them); its account,
    association and folder stay, so nothing is lost and the team put back gets them again."""
    course_yaml = site.parent / "courses" / SLUG / "course.yaml"
    gone = course_file(RED)
    gone["teams"] = [t for t in gone["teams"] if t["name"] != "blue"]
    course_yaml.write_text(yaml.safe_dump(gone))
    blue = folder(site, TEAM_BLUE)
    (blue / "kept.txt").write_text("blue's work\n")
    try:
        done = as_hub(sudo_hub, PROVISION, "--site", str(site), "team", TEAM_BLUE)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"emptied Unix group {TEAM_BLUE}: its team is gone"), done.stdout
        assert grp.getgrnam(TEAM_BLUE).gr_mem == [] and pwd.getpwnam(TEAM_BLUE)
        assert (blue / "kept.txt").read_text() == "blue's work\n"
        for name in (BLUE[0], PROF):
            state, out = as_job(cluster, name, f"os.listdir({str(blue)!r})")
            assert out.startswith("DENIED [Errno 13] Permission denied"), f"{name}: {out}"
        again = as_hub(sudo_hub, PROVISION, "--site", str(site), "team", TEAM_BLUE)
        assert again.stdout.strip().endswith("is as the course files say"), again
        # Never an account that is not a gone team's: refused as before.
        refused = as_hub(sudo_hub, PROVISION, "--site", str(site), "team", f"team-{SLUG}-green")
        assert refused.returncode == 3 and "no team of the course files" in refused.stderr
    finally:
        course_yaml.write_text(yaml.safe_dump(course_file(RED)))
        assert provision(site, TEAM_BLUE).returncode == 0
    assert sorted(grp.getgrnam(TEAM_BLUE).gr_mem) == sorted([*BLUE, PROF])
    state, out = as_job(cluster, BLUE[0], f"print(open({str(blue / 'kept.txt')!r}).read(), end='')")
    assert (state, out) == ("COMPLETED", "blue's work\n"), out


# --- the team server as a Slurm job of the team account -------------------------------------------------

HUB_SLUG = "stm-hub"  # a course of the hub below, its teams' accounts team-stm-hub-*
HUB_TEAM, HUB_OTHER = f"team-{HUB_SLUG}-red", f"team-{HUB_SLUG}-blue"


def hub_course() -> dict:
    return course(
        HUB_SLUG,
        [PROF],
        [*RED, *BLUE, OUTSIDE],
        kind="project-team",
        mentors=[MENTOR],
        resources={"partition": "cpu", "cpus": 1, "memory": "512M", "walltime": "1h"},
        teams=[
            {"name": "red", "members": RED, "mentors": [MENTOR]},
            {"name": "blue", "members": BLUE, "mentors": [PROF]},
        ],
    )


@pytest.fixture(scope="module")
def hub(cluster, site):
    """A hub of the slurm kind on this cluster, as root (sbatch --uid; the production hub runs the
    same command through its sudo rule, tests/integration/test_slurm_sudo.py), whose course sync
    and team servers run the team provisioning."""
    homes = cluster.root / "stm-team-homes"
    homes.mkdir(mode=0o755, exist_ok=True)
    running = RunningHub(
        [hub_course()],
        site={
            "teams": {"min_members": 2},
            "gallery": {"enabled": False},
            "energy": {"service": {"enabled": False}},
            "spawner": cluster.spawner_site(teams=team_accounts(cluster, homes)),
        },
    )
    try:
        running.start()
        # The course sync's first pass: the team accounts' hub users and their Unix side.
        wait_until(
            lambda: (
                running.admin_api().get(f"/users/{HUB_TEAM}").status_code == 200
                and (running.catalogue.data_dir / "teams" / HUB_TEAM).is_dir()
            ),
            120,
            "the course sync to make the team",
        )
        yield running
    finally:
        OUTPUT.mkdir(exist_ok=True)
        (OUTPUT / "test_slurm_teams-hub.log").write_text(running.log())
        with contextlib.suppress(Exception):
            stop_team_server(running)
        running.stop()
        for name in (HUB_TEAM, HUB_OTHER):
            with contextlib.suppress(KeyError):
                remove_unix_user(pwd.getpwnam(name))
            subprocess.run(["groupdel", name], capture_output=True)


def team_server(hub: RunningHub) -> dict | None:
    return (hub.admin_api().get(f"/users/{HUB_TEAM}").json().get("servers") or {}).get("")


def stop_team_server(hub: RunningHub) -> None:
    """A member stops it from the hub (their team-server role allows it)."""
    if team_server(hub) is None:
        return
    client = hub.login(RED[0])
    r = client.delete(f"/hub/api/users/{HUB_TEAM}/server", headers=hub_xsrf(client))
    assert r.status_code in (202, 204), r.text
    wait_until(lambda: team_server(hub) is None, 60, "the team server to stop")


def start_team_server(hub: RunningHub, cluster: SlurmCluster, member: str) -> httpx.Client:
    """``member`` starts the team server from the hub (its launch form: the team's course) and opens it."""
    client = hub.login(member)
    form = client.get(f"/hub/spawn/{HUB_TEAM}")
    assert form.status_code == 200 and f'value="{HUB_SLUG}"' in form.text, form.text[-2000:]
    r = client.post(
        f"/hub/spawn/{HUB_TEAM}",
        data={"course": HUB_SLUG, "_xsrf": hub_xsrf(client)["X-XSRFToken"]},
        follow_redirects=False,
        timeout=60,
    )
    assert r.status_code in (302, 303), f"the form answered {r.status_code}: {r.text[-2000:]}"
    try:
        wait_until(lambda: (team_server(hub) or {}).get("ready"), 120, "the team server", every=0.2)
    except TimeoutError as error:
        logs = sorted((cluster.root / "stm-team-homes" / HUB_TEAM).glob(".ailys-hub-slurm-*.log"))
        raise AssertionError(
            f"{error}\n{hub.log()[-4000:]}\n{[p.read_text()[-2000:] for p in logs]}"
        ) from None
    assert hub.open_server(client, HUB_TEAM).status_code == 200
    return client


def test_the_team_server_is_a_slurm_job_of_the_team_account_in_the_team_folder(hub, cluster):
    stop_team_server(hub)
    member = start_team_server(hub, cluster, RED[0])
    jobs = cluster.run("squeue", "--noheader", f"--user={HUB_TEAM}", "--format=%i %P %C %m").stdout.split(
        "\n"
    )
    jobs = [line.split() for line in jobs if line.strip()]
    assert len(jobs) == 1 and jobs[0][1:] == ["cpu", "1", "512M"], jobs  # the course's resources
    assert cluster.run("squeue", "--noheader", f"--user={RED[0]}", "--format=%i").stdout.split() == []
    # The server's root is the team folder: a notebook made there is the team's, group-writable.
    made = member.put(
        f"/user/{HUB_TEAM}/api/contents/plan.txt",
        json={"type": "file", "format": "text", "content": "by r1 on the team server\n"},
        headers=server_xsrf(member, HUB_TEAM),
    )
    assert made.status_code in (200, 201), made.text
    path = hub.catalogue.data_dir / "teams" / HUB_TEAM / "plan.txt"
    st = path.stat()
    team = pwd.getpwnam(HUB_TEAM)
    assert (st.st_uid, st.st_gid) == (team.pw_uid, team.pw_gid)
    assert stat.S_IMODE(st.st_mode) & 0o060 == 0o060
    # A member's own Slurm job edits it; the team server then reads what they wrote.
    state, out = as_job(cluster, RED[1], f"open({str(path)!r}, 'a').write('and r2 in a job\\n')")
    assert (state, out) == ("COMPLETED", ""), out
    read = member.get(f"/user/{HUB_TEAM}/api/contents/plan.txt").json()
    assert read["content"] == "by r1 on the team server\nand r2 in a job\n"


@pytest.mark.parametrize("who", [RED[1], MENTOR])
def test_members_and_mentors_reach_the_team_server(hub, cluster, who):
    if not (team_server(hub) or {}).get("ready"):
        start_team_server(hub, cluster, RED[0])
    client = hub.login(who)
    assert hub.open_server(client, HUB_TEAM).status_code == 200
    me = client.get(f"/user/{HUB_TEAM}/api/me").json()
    assert me["identity"]["username"] == who  # the person, not the team account


@pytest.mark.parametrize(
    "stranger", [BLUE[0], OUTSIDE, PROF], ids=["other-team", "outside-the-teams", "other-mentor"]
)
def test_anyone_else_gets_403_on_the_team_server(hub, cluster, stranger):
    if not (team_server(hub) or {}).get("ready"):
        start_team_server(hub, cluster, RED[0])
    client = hub.login(stranger)
    r = client.get(f"/user/{HUB_TEAM}/lab", follow_redirects=True)
    assert r.status_code == 403, (r.status_code, str(r.url))
    assert client.get(f"/hub/spawn/{HUB_TEAM}").status_code in (403, 404)


def test_the_files_outlive_the_team_server(hub, cluster):
    path = hub.catalogue.data_dir / "teams" / HUB_TEAM / "plan.txt"
    if not path.exists():
        pytest.fail("the first team server test made plan.txt: run the module as a whole")
    stop_team_server(hub)
    assert cluster.run("squeue", "--noheader", f"--user={HUB_TEAM}", "--format=%i").stdout.split() == []
    member = start_team_server(hub, cluster, RED[1])
    assert "and r2 in a job" in member.get(f"/user/{HUB_TEAM}/api/contents/plan.txt").json()["content"]


# --- team-<team> in homes, made by the person's own job -------------------------------------------------


def courses_sync(hub: RunningHub) -> str:
    """The course sync's pass, now (the hub's own service runs the same every few seconds)."""
    command = [sys.executable, "-m", "hub_config.cli", "courses", "--site", str(hub.site_file), "sync"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_session(hub: RunningHub, name: str) -> httpx.Client:
    """``name``'s own server, a Slurm job as them, started from the hub and opened."""
    client = hub.login(name)
    hub.spawn(client, name, timeout=120)
    return client


def stop_session(hub: RunningHub, client: httpx.Client, name: str) -> None:
    """``name`` stops their server from the hub: its job is cancelled, the next session is a new job."""
    r = client.delete(f"/hub/api/users/{name}/server", headers=hub_xsrf(client))
    assert r.status_code in (202, 204), r.text
    servers = lambda: hub.admin_api().get(f"/users/{name}").json().get("servers")  # noqa: E731
    wait_until(lambda: not servers(), 60, f"{name}'s server to stop")


def test_members_and_mentors_sessions_link_their_team_folders_in_their_homes(hub, cluster):
    folder = hub.catalogue.data_dir / "teams" / HUB_TEAM
    member = start_session(hub, RED[2])
    link = Path(pwd.getpwnam(RED[2]).pw_dir) / "team-red"
    assert link.is_symlink() and Path(os.readlink(link)) == folder
    assert link.lstat().st_uid == pwd.getpwnam(RED[2]).pw_uid  # the member's own job made it
    # Through the link, from one member's server, then from another's: one file, both write it.
    made = member.put(
        f"/user/{RED[2]}/api/contents/team-red/linked.txt",
        json={"type": "file", "format": "text", "content": "r3 through the link\n"},
        headers=server_xsrf(member, RED[2]),
    )
    assert made.status_code in (200, 201), made.text
    assert (folder / "linked.txt").stat().st_uid == pwd.getpwnam(RED[2]).pw_uid
    other = start_session(hub, RED[1])
    edited = other.put(
        f"/user/{RED[1]}/api/contents/team-red/linked.txt",
        json={"type": "file", "format": "text", "content": "r3 through the link\nand r2\n"},
        headers=server_xsrf(other, RED[1]),
    )
    assert edited.status_code == 200, edited.text
    assert (folder / "linked.txt").read_text() == "r3 through the link\nand r2\n"
    # A mentor who also teaches the course has a session of their own: their team's link, no other.
    # (A mentor who only mentors has no course to start: they reach the folder by its path.)
    mentor = start_session(hub, PROF)
    prof_home = Path(pwd.getpwnam(PROF).pw_dir)
    assert Path(os.readlink(prof_home / "team-blue")) == hub.catalogue.data_dir / "teams" / HUB_OTHER
    assert not os.path.lexists(prof_home / "team-red")
    for client, name in ((mentor, PROF), (other, RED[1]), (member, RED[2])):
        stop_session(hub, client, name)


def test_a_removed_membership_loses_its_link_at_the_next_session(hub, cluster):
    link = Path(pwd.getpwnam(RED[2]).pw_dir) / "team-red"
    own = Path(pwd.getpwnam(RED[2]).pw_dir) / "team-notes"  # a folder of the member's own, kept
    own.mkdir(exist_ok=True)
    course_yaml = hub.root / "courses" / HUB_SLUG / "course.yaml"
    removed = hub_course()
    removed["teams"][0]["members"] = RED[:2]
    course_yaml.write_text(yaml.safe_dump(removed))
    try:
        courses_sync(hub)
        wait_until(lambda: RED[2] not in grp.getgrnam(HUB_TEAM).gr_mem, 60, "the sync to take r3 out")
        client = start_session(hub, RED[2])
        assert not os.path.lexists(link) and own.is_dir()
        stop_session(hub, client, RED[2])
    finally:
        course_yaml.write_text(yaml.safe_dump(hub_course()))
        courses_sync(hub)
