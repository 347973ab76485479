"""Login names for trainees, derived from their names: first letter of the first name and the
last name, ASCII, lowercase (Zoé Cohortine -> zcohortine), a valid Unix account name
(schema.types.Username), never a system account's (schema.is_reserved), and unique: digits are
appended to a name already taken (zcohortine2, zcohortine3...)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

from ..schema import is_reserved

MAX_LENGTH = 32  # Username: ^[a-z_][a-z0-9_-]{0,31}$
FALLBACK = "trainee"  # a name with no Latin letter at all
# Letters NFKD does not split into a base letter and an accent.
_LIGATURES = str.maketrans(
    {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th", "ı": "i"}
)


def ascii_fold(text: str) -> str:
    """'Éloïse Le Gall-Œuvray' -> 'eloiselegalloeuvray': lowercase a-z and digits only."""
    text = text.casefold().translate(_LIGATURES)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text)


def base_username(first_name: str, last_name: str) -> str:
    """The name before any digit is appended, at most 32 characters, starting with a letter."""
    first, last = ascii_fold(first_name), ascii_fold(last_name)
    name = (first[:1] + last) or FALLBACK
    if not name[0].isalpha():
        name = "t" + name  # Unix names start with a letter (or _, kept for system accounts)
    return name[:MAX_LENGTH]


def unique_username(first_name: str, last_name: str, taken: Container[str]) -> str:
    """A name derived from these names that is in neither ``taken`` nor the reserved accounts;
    with digits, the base is shortened so the whole stays within 32 characters."""
    base = base_username(first_name, last_name)
    candidate, number = base, 1
    while candidate in taken or is_reserved(candidate):
        number += 1
        suffix = str(number)
        candidate = base[: MAX_LENGTH - len(suffix)] + suffix
    return candidate
