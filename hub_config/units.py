"""Sizes and durations: the one parser and the one formatter of each, wherever one is read or printed.

Read from site and course files (hub_config/schema.py builds its field types on these) and from the
Slurm launch form (spawners/slurm/request.py): the same text means the same value in both.

Sizes follow Slurm's convention (binary: 1G = 1GB = 1GiB = 1024**3 bytes) because the same
numbers end up in ``sbatch --mem``; a lowercase ``b`` (``2Gb``) is refused: to many it means bits.
Durations accept compact forms (``90s``, ``30m``, ``1h30m``, ``2d``) and Slurm's own forms with
Slurm's meaning (``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``). A bare number is
refused in both: YAML turns ``memory: 2048`` into an int, and nobody can tell 2048 of what.

Standard library only, and nothing else of hub_config: spawners/ imports it (DESIGN.md, layout).
"""

from __future__ import annotations

import re

_SIZE_FACTORS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)?$")
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:([KMGTkmgt])(?:[iI]?B)?|B)$")
_BITS_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTkmgt]?)[iI]?b$")  # "2Gb": bits or bytes?
_DURATION_PART_RE = re.compile(r"(\d+)([dhms])")
_DURATION_FACTORS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# Slurm's forms: MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS (a bare number, Slurm's minutes, is refused).
_SLURM_RE = re.compile(r"^(\d+):(\d+)(?::(\d+))?$")
_SLURM_DAYS_RE = re.compile(r"^(\d+)-(\d+)(?::(\d+))?(?::(\d+))?$")


def _written(value, what: str, advice: str) -> str:
    """The text of ``value``, refused when it is not one or is a number without a unit (an int from
    YAML, "2048"); ``advice`` says what to write instead, {n} standing for the number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        # ValueError, not TypeError: pydantic turns only the former into the file's error list
        raise ValueError(f"a {what} is written with a unit, such as {advice.format(n=4)}")  # noqa: TRY004
    text = f"{value:g}" if isinstance(value, float) else str(value).strip()
    if _NUMBER_RE.match(text):
        raise ValueError(f"{text} has no unit: write a {what} with one, such as {advice.format(n=text)}")
    return text


def parse_size(value: str) -> int:
    """Return a size in bytes from ``4G``, ``512M``, ``1.5GiB`` or ``64B``."""
    text = _written(value, "size", "{n}M or {n}G (K, M, G, T: binary units, as Slurm uses them; B: bytes)")
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


def parse_duration(value: str) -> int:
    """Return a duration in seconds from ``1h30m``, ``45m``, ``2d``, ``30:00``, ``04:00:00``, ``1-12:00``."""
    text = _written(value, "duration", "{n}s, {n}m or {n}h, or as Slurm does, such as 04:00:00").lower()
    slurm = _SLURM_RE.match(text)
    if slurm:
        first, second, third = slurm.groups()
        if third is None:  # MM:SS
            return int(first) * 60 + int(second)
        return (int(first) * 60 + int(second)) * 60 + int(third)  # HH:MM:SS
    slurm = _SLURM_DAYS_RE.match(text)
    if slurm:
        days, hours, minutes, seconds = (int(part or 0) for part in slurm.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    compact = re.sub(r"\s+", "", text)  # "1h 30m"
    parts = _DURATION_PART_RE.findall(compact)
    if compact and "".join(n + u for n, u in parts) == compact:
        units = [u for _, u in parts]
        if len(set(units)) == len(units) and units == sorted(units, key="dhms".index):
            return sum(int(n) * _DURATION_FACTORS[u] for n, u in parts)
    raise ValueError(
        f"{value!r} is not a duration: write it with units, such as 90s, 30m, 1h30m or 2d, "
        "or as Slurm does, such as 30:00 (minutes:seconds), 04:00:00 or 1-12:00 (days-hours:minutes)"
    )


def format_size(n_bytes: int, *, exact: bool = True) -> str:
    """A size as text. Exact: the shortest exact text, which parse_size reads back (4294967296 -> '4G'),
    for settings and limits. Not exact: to a tenth of the largest unit reached (10001 -> '9.8K'), for
    the sizes of files."""
    for unit in ("T", "G", "M", "K"):
        factor = _SIZE_FACTORS[unit]
        if exact and n_bytes and n_bytes % factor == 0:
            return f"{n_bytes // factor}{unit}"
        if not exact and n_bytes >= factor:
            return f"{n_bytes / factor:.1f}{unit}"
    return f"{n_bytes}B"


def format_duration(seconds: int) -> str:
    """A compact text for a duration, which parse_duration reads back (5400 -> '1h30m')."""
    if seconds == 0:
        return "0s"
    out = []
    for unit in "dhms":
        count, seconds = divmod(seconds, _DURATION_FACTORS[unit])
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def slurm_time(seconds: int) -> str:
    """A duration as ``sbatch --time`` takes it (D-HH:MM:SS), rounded up to the minute (Slurm's unit)."""
    minutes = -(-seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    return f"{days}-{minutes // 60:02d}:{minutes % 60:02d}:00"


def slurm_megabytes(n_bytes: int) -> int:
    """A size as ``sbatch --mem=<n>M`` takes it, rounded up to the MiB."""
    return -(-n_bytes // 1024**2)
