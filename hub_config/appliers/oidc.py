"""Authentication kind oidc (being built in W2 3/9)."""

from traitlets.config import Config

from ..catalogue import Catalogue


def apply_oidc(c: Config, catalogue: Catalogue) -> None:
    raise NotImplementedError("authentication.kind oidc is being built (W2 3/9)")
