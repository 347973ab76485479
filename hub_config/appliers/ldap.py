"""Authentication kind ldap (being built in W2 3/9)."""

from traitlets.config import Config

from ..catalogue import Catalogue


def apply_ldap(c: Config, catalogue: Catalogue) -> None:
    raise NotImplementedError("authentication.kind ldap is being built (W2 3/9)")
