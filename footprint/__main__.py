"""python -m footprint SITE_FILE: the footprint service, as the hub starts it
(hub_config/appliers/footprint.py). It runs as the hub's account: reading the environment of
learners' processes in /proc (which server a process belongs to) needs that account, or root."""

from __future__ import annotations

import argparse
import logging
import os

from hub_config import names
from hub_config.catalogue import course_files_only


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m footprint", description=__doc__.splitlines()[0])
    parser.add_argument("site_file")
    parser.add_argument("--port", type=int, help="default: the site's energy.service.port")
    default_prefix = names.service_prefix(names.FOOTPRINT_SERVICE)
    parser.add_argument("--base-url", default=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", default_prefix))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s footprint] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per hub API call
    settings = course_files_only(args.site_file).site.energy.service
    from .service import FootprintApp

    app = FootprintApp(os.path.abspath(args.site_file), args.base_url)
    app.start(args.port or settings.port)


if __name__ == "__main__":
    main()
