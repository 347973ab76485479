"""Starter material is copied into homes without ever touching a learner's own files."""

import os

from spawners.local import copy_missing


def test_copies_what_is_missing_and_never_overwrites(tmp_path):
    src, home = tmp_path / "material", tmp_path / "home"
    (src / "data").mkdir(parents=True)
    (src / "tp1.ipynb").write_text("fresh")
    (src / "data" / "iris.csv").write_text("a,b")
    home.mkdir()
    (home / "tp1.ipynb").write_text("my work")
    copied = copy_missing(src, home)
    assert sorted(p.relative_to(home).as_posix() for p in copied) == ["data", "data/iris.csv"]
    assert (home / "tp1.ipynb").read_text() == "my work"
    assert copy_missing(src, home) == []  # a second start copies nothing


def test_links_in_material_are_not_followed(tmp_path):
    src, home = tmp_path / "material", tmp_path / "home"
    src.mkdir()
    home.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("instructor only")
    os.symlink(secret, src / "innocent.txt")
    assert copy_missing(src, home) == []
    assert not (home / "innocent.txt").exists()
