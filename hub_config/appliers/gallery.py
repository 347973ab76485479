"""The Voilà demo gallery (gallery/) as a hub-managed service, and the login page linking to it.

The service gets no API scopes: it only learns who a visitor is through OAuth. Every user
may log in to it (access:services!service=gallery, added to the default 'user' role); which
demos they may open is the gallery's decision, from the course files.
"""

import sys

from traitlets.config import Config

from .. import names
from ..catalogue import Catalogue
from ._lists import append

SERVICE = names.GALLERY_SERVICE
ACCESS_SCOPE = names.access_scope(SERVICE)


def gallery_url(catalogue: Catalogue) -> str:
    return names.service_prefix(SERVICE, catalogue.site.listen.base_url)


def public_demos(catalogue: Catalogue) -> list[dict]:
    """The public demos the login page lists: title (fr, en) and URL."""
    base = gallery_url(catalogue)
    return [
        {
            "title": demo.title.model_dump(),
            "url": f"{base}demo/{course.slug}/{demo.notebook.removesuffix('.ipynb')}",
        }
        for course in catalogue.courses
        for demo in course.demos
        if demo.public
    ]


def apply_gallery(c: Config, catalogue: Catalogue) -> None:
    gallery = catalogue.site.gallery
    if not gallery.enabled:
        return
    append(
        c.JupyterHub,
        "services",
        {
            "name": SERVICE,
            "url": f"http://127.0.0.1:{gallery.port}",
            "command": [sys.executable, "-m", "gallery", str(catalogue.site_file)],
            "display": True,
            "info": {"description": "Voilà demo gallery / Galerie de démos"},
            # Our own service: no "authorize access" page between the hub and the gallery.
            "oauth_no_confirm": True,
        },
    )
    c.JupyterHub.extra_user_scopes = {*c.JupyterHub.get("extra_user_scopes", set()), ACCESS_SCOPE}
    # The hub's login page (hub_config/templates/login.html) lists the public demos.
    c.JupyterHub.template_vars = {
        **c.JupyterHub.get("template_vars", {}),
        "gallery_url": gallery_url(catalogue),
        "gallery_public_demos": public_demos(catalogue),
    }
