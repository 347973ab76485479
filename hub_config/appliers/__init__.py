"""Small pure functions, one per concern, that set traitlets on a Config from the models.

Each takes the Config and what it needs, sets keys, reads no file and starts nothing;
tests call them on an empty Config. ``apply_all`` fixes their order.
"""

from __future__ import annotations

from traitlets.config import Config

from ..catalogue import Catalogue
from ..secrets import Secrets
from .access import apply_groups_and_roles
from .auth import apply_auth
from .culler import apply_culler
from .exchange import apply_exchange
from .footprint import apply_footprint
from .gallery import apply_gallery
from .grading import apply_grading
from .languages import apply_languages
from .mentors import apply_mentors
from .metrics import apply_metrics
from .network import apply_network
from .services import apply_managed_services, apply_services
from .spawner import apply_spawner
from .storage import apply_storage
from .team_folders import apply_team_folders
from .teams import apply_team_servers


def apply_all(c: Config, catalogue: Catalogue, secrets: Secrets) -> Config:
    apply_network(c, catalogue.site, secrets)
    apply_storage(c, catalogue, secrets)
    apply_auth(c, catalogue, secrets)
    apply_spawner(c, catalogue)
    apply_team_servers(c, catalogue)  # after apply_spawner: a team account's server
    apply_team_folders(c, catalogue)  # each person's team folders and links in their home
    apply_groups_and_roles(c, catalogue)
    apply_services(c, catalogue, secrets)
    apply_exchange(c, catalogue)  # after apply_spawner: adds to Spawner.environment
    apply_culler(c, catalogue.site)
    apply_gallery(c, catalogue)
    apply_footprint(c, catalogue)
    apply_mentors(c, catalogue)
    apply_grading(c, catalogue)
    apply_metrics(c, catalogue, secrets)
    apply_managed_services(c, catalogue)  # last: every service the others added
    apply_languages(c)  # after every Spawner.environment and template path
    return c
