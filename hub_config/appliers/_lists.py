"""Appending to list traitlets that several appliers fill (services, roles)."""


def append(section, key: str, *items) -> None:
    section[key] = [*section.get(key, []), *items]
