"""What the footprint pages show, as plain data: pure functions of records, so the rules (who sees
what, how figures are summed and compared) are unit-tested without a hub.

Comparisons a person understands, each factor with its source (shown on the page):

- km by car: 175 gCO2e per km, the average passenger car in the EU, the figure of the Green
  Algorithms calculator data v3.0 (referenceValues.csv, passengerCar_EU_perkm; from Atmospheric
  Environment 2018, doi:10.1016/j.atmosenv.2018.09.029, and the UK government's GHG conversion
  factors 2019);
- hours of a laptop: 30 W in use, from 15 to 45 W (Michael Bluejay, "How much electricity do
  computers use?", michaelbluejay.com/electricity/computers.html): energy, not carbon, so it does not
  depend on the grid's carbon intensity.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from .model import Range

CAR_G_PER_KM = 175.0
CAR_SOURCE = (
    "Green Algorithms calculator data v3.0, referenceValues.csv: average passenger car in the EU, "
    "175 gCO2e/km (Atmospheric Environment 2018; UK government GHG conversion factors 2019)"
)
LAPTOP_W = Range(30.0, 15.0, 45.0)
LAPTOP_SOURCE = (
    "Michael Bluejay, How much electricity do computers use? (laptop in use: 15 to 45 W; 30 W here)"
)


def car_km(co2_g: Range) -> Range:
    return co2_g * (1 / CAR_G_PER_KM)


def laptop_hours(energy_wh: Range) -> Range:
    """Hours a laptop runs on that energy: the range divides by the laptop's highest draw for its
    low end and by its lowest for its high end."""
    return Range(
        energy_wh.value / LAPTOP_W.value, energy_wh.low / LAPTOP_W.high, energy_wh.high / LAPTOP_W.low
    )


@dataclass
class Sum:
    """Records summed: energy and carbon with their ranges, and how they were obtained."""

    records: int = 0
    measured: int = 0
    estimate: int = 0
    core_hours: float = 0.0
    energy: Range = field(default_factory=lambda: Range.exact(0.0))
    co2: Range = field(default_factory=lambda: Range.exact(0.0))

    def add(self, r) -> Sum:
        self.records += 1
        self.measured += r.method == "measured"
        self.estimate += r.method == "estimate"
        self.core_hours += r.core_hours
        self.energy = self.energy + Range(r.energy_wh, r.energy_wh_low, r.energy_wh_high)
        self.co2 = self.co2 + Range(r.co2_g, r.co2_g_low, r.co2_g_high)
        return self

    @property
    def method(self) -> str:
        """measured, estimate, or mixed: the label shown beside the figure."""
        if self.measured and self.estimate:
            return "mixed"
        return "measured" if self.measured else "estimate"

    @property
    def car_km(self) -> Range:
        return car_km(self.co2)

    @property
    def laptop_hours(self) -> Range:
        return laptop_hours(self.energy)


def total(records) -> Sum:
    result = Sum()
    for r in records:
        result.add(r)
    return result


def by(records, key) -> dict[str, Sum]:
    """Sums per key(record), largest energy first."""
    sums: dict[str, Sum] = defaultdict(Sum)
    for r in records:
        sums[key(r)].add(r)
    return dict(sorted(sums.items(), key=lambda kv: (-kv[1].energy.value, kv[0])))


def of_person(records, who: str) -> list:
    """Only this person's records: a learner never sees another's (the pages' one rule)."""
    return [r for r in records if r.who == who]


def in_window(records, start: dt.date, end: dt.date) -> list:
    """Records of sessions that ended within a course's dates (inclusive)."""
    return [r for r in records if r.end is not None and start <= r.end.date() <= end]


def may_see_course(groups, slug: str, staff_group: str) -> bool:
    """A course's figures are for its instructors only (learners included in 'anyone else')."""
    return staff_group in set(groups)


def assignment_runs(records) -> dict[str, Sum]:
    """Autograde records per assignment: a run total over its tasks (Slurm array or local workers)."""
    return by([r for r in records if r.kind == "autograde"], lambda r: r.assignment or "-")


def learner_sessions(records) -> dict[str, Sum]:
    return by([r for r in records if r.kind != "autograde"], lambda r: r.who)


def fmt(value: float, digits: int = 2) -> str:
    """A figure with enough digits to be read: 0.0123 -> 0.012, 12.345 -> 12.3."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.{max(0, digits - 1)}f}"
    return f"{value:.{digits}g}"


def fmt_range(r: Range) -> str:
    return f"{fmt(r.value)} ({fmt(r.low)}–{fmt(r.high)})"


def fmt_size(n_bytes: int) -> str:
    from hub_config.units import format_size

    return format_size(n_bytes, exact=False)
