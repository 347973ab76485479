"""How much disk a person uses against the site's `quotas` (schema/site.py Quotas).

The exchange's share is enforced by the exchange itself (grading/exchange/storage.py refuses a
submission over it). A home's is shown to its owner (footprint page) and enforced, on a deployed
node, by the file system's own quotas (setquota, docs/backup.md): a home can grow from inside a
learner's server, where no check of ours runs. Sizes are of the files' bytes (links not followed),
what a learner can see with `du --apparent-size`.
"""

from __future__ import annotations

import dataclasses

# The exchange knows its own layout, and its client side runs in learners' images, which carry
# none of hub_config but units (images/spec.py follows its imports): the sizes are measured there.
from grading.exchange.storage import exchange_used, folder_size


@dataclasses.dataclass(frozen=True)
class Usage:
    used: int
    limit: int | None  # None: no quota

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit

    @property
    def share(self) -> float | None:
        return None if not self.limit else self.used / self.limit


def person_usage(catalogue, name: str) -> list[tuple[str, Usage]]:
    """("home" | "exchange", usage) of each quota the site sets: the home only where homes are the
    hub host's (local and docker sites; a Slurm site's are the cluster's, with its own quotas)."""
    from .personal_data.places import check_person, places
    from .team_folders import HOST_KINDS, home_root

    name, quotas, found = check_person(name), catalogue.site.quotas, []
    if quotas.home is not None and catalogue.site.spawner.kind in HOST_KINDS:
        found.append(("home", Usage(folder_size(home_root(catalogue) / name), quotas.home)))
    if quotas.exchange is not None:
        found.append(
            ("exchange", Usage(exchange_used(places(catalogue).exchange_root, name), quotas.exchange))
        )
    return found
