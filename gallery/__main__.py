"""python -m gallery SITE_FILE: the gallery service, as the hub starts it (hub_config/appliers/gallery.py).

Run by a root hub, it first becomes the site's ``gallery.run_as`` account, with a fresh home
of its own for Jupyter's runtime files (gallery/runtime.py), so no demo code ever runs as root.
"""

from __future__ import annotations

import argparse
import os
import pwd
from pathlib import Path

from hub_config import names
from hub_config.catalogue import course_files_only

from .runtime import make_run_folder, sweep_stale


def drop_privileges(entry: pwd.struct_passwd, home: Path) -> None:
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ.update(HOME=str(home), USER=entry.pw_name, LOGNAME=entry.pw_name)
    for var in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        os.environ.pop(var, None)
    os.environ["MPLCONFIGDIR"] = str(home / ".matplotlib")


KERNEL_CONFIG = """\
# Written by the gallery at start (gallery/__main__.py). Demo kernels keep no history: nobody
# reads it, and it would be one SQLite database shared by every kernel.
c.HistoryManager.enabled = False
"""


def prepare_kernel_profile(run_folder: Path) -> None:
    """A private IPython profile for the demo kernels, made once before any kernel starts."""
    profile = run_folder / "ipython" / "profile_default"
    (profile / "startup").mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    os.environ["IPYTHONDIR"] = str(run_folder / "ipython")


def warm_matplotlib_cache() -> None:
    """Build matplotlib's font cache once, here, before kernels start: with a fresh home, every
    kernel would build it at once on its first plot (seconds each, and they race on the file)."""
    try:
        import matplotlib.font_manager  # noqa: F401
    except ImportError:  # demos without matplotlib
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gallery", description=__doc__.splitlines()[0])
    parser.add_argument("site_file")
    parser.add_argument("--port", type=int, help="default: the site's gallery.port")
    default_prefix = names.service_prefix(names.GALLERY_SERVICE)
    parser.add_argument("--base-url", default=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", default_prefix))
    args = parser.parse_args(argv)
    settings = course_files_only(args.site_file).site.gallery
    root = os.geteuid() == 0
    account = pwd.getpwnam(settings.run_as) if root else pwd.getpwuid(os.getuid())
    run_folder = make_run_folder(account.pw_uid, account.pw_gid)
    if root:
        drop_privileges(account, run_folder / "home")
    sweep_stale(account.pw_uid)  # as the gallery's account: what a killed gallery left in /tmp

    prepare_kernel_profile(run_folder)
    warm_matplotlib_cache()
    from .app import GalleryApp  # after dropping privileges: Jupyter's paths depend on HOME

    app = GalleryApp(
        site_file=os.path.abspath(args.site_file),
        ip="127.0.0.1",
        port=args.port or settings.port,
        port_retries=0,
        base_url=args.base_url,
        open_browser=False,
    )
    app.initialize([])
    app.start()


if __name__ == "__main__":
    main()
