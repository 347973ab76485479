"""The constants of the energy and carbon model (footprint/model.py, docs/energy.md): site settings,
each with its source. Defaults are pinned to one data version of the Green Algorithms calculator
(github.com/GreenAlgorithms/green-algorithms-tool, data/v3.0, commit 30df2fe of 2025-02-05): its
figures change between versions (PUE 1.67 in v1.0-v2.2 and the paper, 1.56 in v3.0; France
47 g/kWh in v1.0, 38.95 in v1.1-v2.1, 51.28 since v2.2)."""

from __future__ import annotations

from pydantic import Field, model_validator

from .types import Port, Seconds, SlurmName, Strict

CALCULATOR = "Green Algorithms calculator data v3.0 (green-algorithms-tool, commit 30df2fe, 2025-02-05)"


class Spread(Strict):
    """A constant that is disputed or unknown here: the value used, and the range it may take.
    Reports show the figure computed with `value` and the range computed with `low` and `high`."""

    value: float = Field(gt=0, description="The figure used for the headline number.")
    low: float = Field(gt=0, description="Lowest credible figure.")
    high: float = Field(gt=0, description="Highest credible figure.")

    @model_validator(mode="after")
    def _ordered(self) -> Spread:
        if not self.low <= self.value <= self.high:
            raise ValueError(f"need low <= value <= high, not {self.low}, {self.value}, {self.high}")
        return self


class Hardware(Strict):
    """Power of one partition's hardware (or of the hub host, for local and container sessions)."""

    core_watts: float = Field(
        7.5,
        gt=0,
        description="Power of one core at full use, in W: TDP / cores. Default: Intel Xeon Gold 6248 "
        f"(150 W, 20 cores), the figure of {CALCULATOR}, data/v3.0/TDP_cpu.csv.",
    )
    gpu_watts: float = Field(
        300,
        ge=0,
        description="Power of one GPU at full use, in W (its TDP). Default: NVIDIA Tesla V100, 300 W, "
        f"{CALCULATOR}, data/v3.0/TDP_gpu.csv.",
    )
    cpu_model: str = Field(
        "Intel Xeon Gold 6248 (assumed)",
        description="What the figures describe, shown in reports: name the real model when you set them.",
    )


class FootprintService(Strict):
    """The hub service `footprint` (footprint/service.py): the learners' and instructors' pages, the
    JupyterLab status-bar figure, the sampling of local and container sessions, the Slurm collection."""

    enabled: bool = Field(True, description="Run the footprint service (pages, sampling, collection).")
    port: Port = Field(8093, description="Port of the footprint service on 127.0.0.1 (the proxy reaches it).")
    sample_every: Seconds = Field(
        60,
        ge=1,
        description="How often the CPU time and memory of running local and container sessions are read "
        "(/proc). A session's figure is cumulative since its start, so a longer period loses at most its "
        "last period's CPU time; the cost is about 2 ms of the service's CPU per sample (docs/energy.md).",
    )
    collect_every: Seconds = Field(
        300,
        ge=10,
        description="On the slurm site: how often `ailys energy collect` runs (sacct since the last record), "
        "so jobs that ended while the hub was down are recorded when it comes back.",
    )


class Energy(Strict):
    """Energy and carbon of sessions and grading runs, by the Green Algorithms model (docs/energy.md)."""

    host: Hardware = Field(
        default_factory=Hardware,
        description="Hardware of the hub host: local sessions, containers, local autograde workers.",
    )
    partition_default: Hardware = Field(
        default_factory=Hardware, description="Hardware of a Slurm partition not listed in partitions."
    )
    partitions: dict[SlurmName, Hardware] = Field(
        default_factory=dict,
        description="Hardware per Slurm partition, e.g. {gpu: {core_watts: 9.4, gpu_watts: 300}}.",
    )
    memory_watts_per_gb: Spread = Field(
        default_factory=lambda: Spread(value=0.3725, low=0.08, high=0.3725),
        description="Power of memory per GB allocated (not used), in W. Value 0.3725 W/GB: "
        f"{CALCULATOR}, data/v3.0/referenceValues.csv (from Karyakin and Salem 2017, and Tom's Hardware "
        "measurements of DDR4), the paper's figure too. Low 0.08 W/GB: the lowest figure argued for "
        "modern DIMMs (issue 14).",
    )
    pue: Spread = Field(
        default_factory=lambda: Spread(value=1.56, low=1.09, high=1.67),
        description="Power usage effectiveness of the Mesolys datacentres, unknown: value 1.56, the "
        f"world average of {CALCULATOR}, data/v3.0/defaults_PUE.csv (Uptime Institute Global Data "
        "Center Survey 2024); high 1.67, the paper's and calculator v1.0-v2.2's figure (Uptime "
        "Institute 2019); low 1.09, the best provider of the same file (OVHcloud, 2023). Set the "
        "datacentre's measured PUE when it is published.",
    )
    carbon_intensity: Spread = Field(
        default_factory=lambda: Spread(value=51.28, low=30, high=51.28),
        description="Carbon intensity of the French grid, in gCO2e/kWh. Value 51.28: France in "
        f"{CALCULATOR}, data/v3.0/CI_aggregated.csv (carbonfootprint.com March 2022 and the "
        "Association of Issuing Bodies 2021, production mix of 2020). Low 30: yearly averages "
        "published since 2020 are near 30 to 50 (RTE éCO2mix); set the year's figure.",
    )

    service: FootprintService = Field(
        default_factory=FootprintService, description="The footprint hub service: pages and sampling."
    )

    def hardware(self, partition: str | None) -> Hardware:
        """The hardware of a Slurm partition; None: the hub host."""
        if partition is None:
            return self.host
        return self.partitions.get(partition, self.partition_default)
