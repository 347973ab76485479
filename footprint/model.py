"""The Green Algorithms model (Lannelongue, Grealey, Inouye, Adv. Sci. 2021, doi:10.1002/advs.202100707),
as its calculator computes it (green-algorithms-tool, blueprints/form/form_blueprint.py):

    energy = runtime × (cores × power per core × core usage + GPUs × power per GPU × GPU usage
                        + memory GB × power per GB) × PUE
    carbon = energy × carbon intensity

Pure: numbers in, numbers out. Where a constant is disputed or unknown (memory power, PUE, carbon
intensity) the result is a Range: the figure with the chosen constants, and the lowest and highest
the constants' ranges give. docs/energy.md explains each constant; hub_config/schema/energy.py holds them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """A figure and the range it may take (low <= value <= high), all non-negative."""

    value: float
    low: float
    high: float

    @classmethod
    def exact(cls, value: float) -> Range:
        return cls(value, value, value)

    def __add__(self, other: Range) -> Range:
        return Range(self.value + other.value, self.low + other.low, self.high + other.high)

    def __mul__(self, other: Range | float) -> Range:
        # Non-negative factors: the product's bounds are the products of the bounds.
        if isinstance(other, Range):
            return Range(self.value * other.value, self.low * other.low, self.high * other.high)
        return Range(self.value * other, self.low * other, self.high * other)

    __rmul__ = __mul__


@dataclass(frozen=True)
class Factors:
    """The constants for one piece of hardware in one datacentre (from the site's `energy` section)."""

    core_watts: float
    gpu_watts: float
    memory_watts_per_gb: Range
    pue: Range
    carbon_intensity_g_per_kwh: Range


@dataclass(frozen=True)
class Usage:
    """What a job or session held, for how long, and how much of its cores it used."""

    runtime_s: float
    cores: float
    core_usage: float  # 0..1: CPU time / (runtime × cores)
    memory_gb: float  # allocated, not used: memory draws power whether used or not
    gpus: float = 0
    # No GPU utilisation in sacct: the calculator's default, full use, with 0 as the low end.
    gpu_usage: Range = Range(1.0, 0.0, 1.0)

    @property
    def hours(self) -> float:
        return self.runtime_s / 3600

    @property
    def core_hours(self) -> float:
        return self.cores * self.hours

    @property
    def memory_gb_hours(self) -> float:
        return self.memory_gb * self.hours

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.hours


def factors_for(energy, partition: str | None) -> Factors:
    """The Factors of a partition (None: the hub host) from a hub_config.schema.Energy."""
    hardware = energy.hardware(partition)

    def spread(s) -> Range:
        return Range(s.value, s.low, s.high)

    return Factors(
        core_watts=hardware.core_watts,
        gpu_watts=hardware.gpu_watts,
        memory_watts_per_gb=spread(energy.memory_watts_per_gb),
        pue=spread(energy.pue),
        carbon_intensity_g_per_kwh=spread(energy.carbon_intensity),
    )


def core_usage(cpu_seconds: float, runtime_s: float, cores: float) -> float:
    """The share of the allocated cores' time spent computing, clamped to 0..1 (CPU time counted
    at the end of a second can exceed runtime × cores by a little)."""
    if runtime_s <= 0 or cores <= 0:
        return 0.0
    return min(1.0, max(0.0, cpu_seconds / (runtime_s * cores)))


def power_draw_watts(usage: Usage, factors: Factors) -> Range:
    """The hardware's draw while the job runs, before the datacentre's overhead (PUE)."""
    cores = Range.exact(usage.cores * factors.core_watts * usage.core_usage)
    gpus = usage.gpu_usage * (usage.gpus * factors.gpu_watts)
    memory = factors.memory_watts_per_gb * usage.memory_gb
    return cores + gpus + memory


def estimated_energy_wh(usage: Usage, factors: Factors) -> Range:
    """Energy drawn from the grid, in Wh: the draw over the runtime, times PUE."""
    return power_draw_watts(usage, factors) * usage.hours * factors.pue


def measured_energy_wh(joules: float, factors: Factors) -> Range:
    """Energy drawn from the grid, in Wh, from what the node measured (Slurm's ConsumedEnergy, RAPL
    or IPMI): the node's meters see no cooling, so PUE still applies."""
    return factors.pue * (joules / 3600)


def carbon_g(energy_wh: Range, factors: Factors) -> Range:
    """Greenhouse gases emitted to produce that energy, in gCO2e."""
    return energy_wh * (1 / 1000) * factors.carbon_intensity_g_per_kwh


def hourly_energy_wh(cores: float, memory_gb: float, gpus: float, factors: Factors) -> Range:
    """Energy of one hour of an allocation used in full (the launch form's figure): the most a
    session of these resources costs per hour, the range from the disputed constants."""
    return estimated_energy_wh(Usage(3600, cores, 1.0, memory_gb, gpus, Range.exact(1.0)), factors)
