"""The grading path's allow-list environment and the folders mounted back in the sandbox."""

from __future__ import annotations

import sys

from grading.autograde import sandbox
from grading.autograde.slurm import client_env


def test_the_allow_list_keeps_the_locale_and_path_and_drops_every_secret():
    kept = {"PATH": "/usr/bin", "LANG": "fr_FR.UTF-8", "LC_TIME": "C", "TZ": "Europe/Paris"}
    secrets = {"JUPYTERHUB_API_TOKEN": "t0k", "AWS_SECRET_ACCESS_KEY": "s3c", "SLURM_CONF": "/etc/other.conf"}
    caller = {**kept, **secrets, "PYTHONPATH": "/elsewhere", "HOME": "/root"}
    env = sandbox.grading_env(caller, HOME="/tmp/t")
    assert env == {**kept, "PYTHONPATH": sandbox.CHECKOUT, "HOME": "/tmp/t"}
    assert sandbox.grading_env({})["PATH"]  # a PATH even when the caller has none


def test_the_slurm_commands_get_the_allow_list_and_the_clusters_conf(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t0k")
    monkeypatch.setenv("SLURM_CONF", "/from/env.conf")
    assert client_env()["SLURM_CONF"] == "/from/env.conf"
    env = client_env("/site/slurm.conf")
    assert env["SLURM_CONF"] == "/site/slurm.conf" and "JUPYTERHUB_API_TOKEN" not in env


def test_the_callers_home_is_private_but_never_the_root(monkeypatch):
    monkeypatch.setenv("HOME", "/home/prof")
    assert "/home/prof" in sandbox.private_paths()
    monkeypatch.setenv("HOME", "/")
    assert "/" not in sandbox.private_paths()


def test_python_is_mounted_back_when_a_hidden_home_holds_it(monkeypatch):
    monkeypatch.setattr(sys, "prefix", "/home/prof/venv")
    monkeypatch.setattr(sys, "exec_prefix", "/home/prof/venv")
    monkeypatch.setattr(sys, "path", ["/", "/home/prof/venv/lib/site-packages", "/usr/lib/python3.11"])
    monkeypatch.setattr(sandbox, "CHECKOUT", "/home/prof/ailys")
    monkeypatch.setattr(sandbox.os.path, "isdir", lambda p: True)
    monkeypatch.setattr(sandbox.os.path, "realpath", lambda p: p)
    # the venv (its site-packages inside it) and our package, not the rest of the checkout
    assert sandbox._mounted_back(["/home/prof"]) == ["/home/prof/ailys/grading", "/home/prof/venv"]
    # a folder hidden inside the venv: only the parts of it that do not hold that one come back
    back = sandbox._mounted_back(["/home/prof", "/home/prof/venv/secrets"])
    assert back == ["/home/prof/ailys/grading", "/home/prof/venv/lib/site-packages"]
    assert sandbox._mounted_back(["/srv/course"]) == []
