"""Sizes and durations as people write them in site and course files.

Sizes follow Slurm's convention (binary: 1G = 1GB = 1GiB = 1024**3 bytes) because the same
numbers end up in ``sbatch --mem``; a lowercase ``b`` (``2Gb``) is refused: to many it means bits.
Durations accept compact forms (``90s``, ``30m``, ``1h30m``, ``2d``) and Slurm's walltime forms
(``MM:SS``, ``HH:MM:SS``, ``D-HH:MM:SS``). Anything else is an error that says what to write instead.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

_SIZE_FACTORS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)(?:([KMGTkmgt])(?:[iI]?B)?|B)?$")
_BITS_RE = re.compile(r"^(\d+(?:\.\d+)?)([KMGTkmgt]?)[iI]?b$")  # "2Gb": bits or bytes?
_DURATION_PART_RE = re.compile(r"(\d+)([dhms])")
_DURATION_FACTORS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_SLURM_RE = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$")


def parse_size(value: str | int) -> int:
    """Return a size in bytes from ``4G``, ``512M``, ``1.5GiB`` or a byte count."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number with a unit, such as 4G or 512M")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; a size must be 0 or more")
        return value
    text = str(value).strip()
    bits = _BITS_RE.match(text)
    if bits:
        number, unit = bits.groups()
        raise ValueError(
            f"{value!r} is ambiguous: a lowercase b means bits to many; sizes are in bytes, "
            f"write {number}{unit.upper() or 'B'}" + (f" (or {number}{unit.upper()}B)" if unit else "")
        )
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(
            f"{value!r} is not a size: write a number and one of K, M, G, T "
            "(binary units, as Slurm uses them), for example 4G or 512M"
        )
    number, unit = match.groups()
    return int(float(number) * _SIZE_FACTORS[(unit or "").upper()])


def parse_duration(value: str | int) -> int:
    """Return a duration in seconds from ``1h30m``, ``45m``, ``2d``, ``04:00:00`` or seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a text such as 1h30m")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; a duration must be 0 or more")
        return value
    text = str(value).strip().lower()
    slurm = _SLURM_RE.match(text)
    if slurm:
        days, hours, minutes, seconds = (int(part or 0) for part in slurm.groups())
        if slurm.group(2) is None:  # "MM:SS"
            hours, minutes, seconds = 0, int(slurm.group(3)), int(slurm.group(4))
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    parts = _DURATION_PART_RE.findall(text)
    if text and "".join(n + u for n, u in parts) == text:
        units = [u for _, u in parts]
        if len(set(units)) == len(units) and units == sorted(units, key="dhms".index):
            return sum(int(n) * _DURATION_FACTORS[u] for n, u in parts)
    raise ValueError(
        f"{value!r} is not a duration: write it with units, such as 90s, 30m, 1h30m or 2d, "
        "or as Slurm does, such as 04:00:00"
    )


def format_size(n_bytes: int) -> str:
    """The shortest exact Slurm-style text for a size (4294967296 -> '4G')."""
    for unit in ("T", "G", "M", "K"):
        factor = _SIZE_FACTORS[unit]
        if n_bytes and n_bytes % factor == 0:
            return f"{n_bytes // factor}{unit}"
    return str(n_bytes)


def format_duration(seconds: int) -> str:
    """A compact text for a duration (5400 -> '1h30m')."""
    if seconds == 0:
        return "0s"
    out = []
    for unit in "dhms":
        count, seconds = divmod(seconds, _DURATION_FACTORS[unit])
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


# Field types for the schema: the file says "4G", the model holds bytes.
Bytes = Annotated[int, BeforeValidator(parse_size), WithJsonSchema({"type": "string", "examples": ["4G"]})]
Seconds = Annotated[
    int, BeforeValidator(parse_duration), WithJsonSchema({"type": "string", "examples": ["1h30m"]})
]
