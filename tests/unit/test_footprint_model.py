"""The Green Algorithms model (footprint/model.py) against a worked example of its authors, and the
site's defaults against the calculator data version they are pinned to."""

import pytest

from footprint.model import (
    Factors,
    Range,
    Usage,
    carbon_g,
    core_usage,
    estimated_energy_wh,
    factors_for,
    measured_energy_wh,
)
from hub_config.schema.energy import Energy, Spread


def test_the_worked_example_of_the_green_algorithms_hpc_tool_is_reproduced():
    # Worked example of the Green Algorithms authors' own HPC implementation (Cambridge Sustainable
    # Computing Lab, Green-Algorithms-core, tests/testdata/slurm/expected/single_job_completed_expected.csv
    # at commit 59c53c26, inputs in tests/conftest.py at 456b7f12): a Slurm job on partition
    # yew-himem (hardware profile HP1, Xeon Gold 6142, 9.4 W per core), wall-clock 2 h 50 min,
    # TotalCPU 22 h 40 min, 16 GB of memory requested, PUE 1.15, 231.12 gCO2e/kWh, memory
    # 0.3725 W/GB. Published: energy 0.26444633333333334 kWh, carbon footprint 61.118836560000005 g.
    runtime = 2 * 3600 + 50 * 60
    cores = 8  # any: the example gives CPU time, which is cores × usage × runtime
    usage = Usage(
        runtime_s=runtime,
        cores=cores,
        core_usage=core_usage((22 * 60 + 40) * 60, runtime, cores),
        memory_gb=16,
    )
    factors = Factors(
        core_watts=9.4,
        gpu_watts=0,
        memory_watts_per_gb=Range.exact(0.3725),
        pue=Range.exact(1.15),
        carbon_intensity_g_per_kwh=Range.exact(231.12),
    )
    energy = estimated_energy_wh(usage, factors)
    assert energy.value / 1000 == pytest.approx(0.26444633333333334, rel=1e-12)
    assert carbon_g(energy, factors).value == pytest.approx(61.118836560000005, rel=1e-12)
    assert energy.low == energy.high == energy.value  # exact constants: no range


def test_the_defaults_are_those_of_calculator_data_v3_0():
    # green-algorithms-tool commit 30df2fe (2025-02-05), data/v3.0: TDP_cpu.csv (Xeon Gold 6248, 150 W,
    # 20 cores, 7.5 W per core), TDP_gpu.csv (Tesla V100, 300 W), referenceValues.csv (memoryPower
    # 0.3725), defaults_PUE.csv (Unknown 1.56), CI_aggregated.csv (FR 51.28 gCO2e/kWh, data of 2020).
    factors = factors_for(Energy(), "anything")
    assert (factors.core_watts, factors.gpu_watts) == (7.5, 300)
    assert factors.memory_watts_per_gb == Range(0.3725, 0.08, 0.3725)
    assert factors.pue == Range(1.56, 1.09, 1.67)
    assert factors.carbon_intensity_g_per_kwh == Range(51.28, 30, 51.28)


def test_an_hour_on_a_default_core_gives_the_arithmetic_and_its_range():
    # 1 h, 1 core at full use, 2 GB: (7.5 + 2 × 0.3725) W × 1.56 = 12.8622 Wh; 0.6595... g at 51.28 g/kWh
    factors = factors_for(Energy(), None)
    energy = estimated_energy_wh(Usage(runtime_s=3600, cores=1, core_usage=1, memory_gb=2), factors)
    assert energy.value == pytest.approx((7.5 + 2 * 0.3725) * 1.56)
    assert energy.low == pytest.approx((7.5 + 2 * 0.08) * 1.09)
    assert energy.high == pytest.approx((7.5 + 2 * 0.3725) * 1.67)
    co2 = carbon_g(energy, factors)
    assert co2.value == pytest.approx(energy.value * 51.28 / 1000)
    assert co2.low == pytest.approx(energy.low * 30 / 1000)
    assert co2.low < co2.value <= co2.high


def test_gpus_count_at_their_power_with_a_range_down_to_idle():
    factors = factors_for(Energy(), "gpu")
    usage = Usage(runtime_s=1800, cores=2, core_usage=0.5, memory_gb=0, gpus=2)
    energy = estimated_energy_wh(usage, factors)
    assert energy.value == pytest.approx(0.5 * (2 * 7.5 * 0.5 + 2 * 300) * 1.56)
    assert energy.low == pytest.approx(0.5 * (2 * 7.5 * 0.5) * 1.09)


def test_a_measured_energy_still_pays_the_datacentre_overhead():
    factors = factors_for(Energy(), "cpu")
    energy = measured_energy_wh(3600 * 400, factors)  # 400 W for an hour at the node
    assert (energy.value, energy.low, energy.high) == pytest.approx((400 * 1.56, 400 * 1.09, 400 * 1.67))


def test_core_usage_is_cpu_time_over_the_cores_time_clamped():
    assert core_usage(30, 60, 1) == 0.5
    assert core_usage(130, 60, 2) == 1.0  # counted at the end of a tick: a little over
    assert core_usage(5, 0, 1) == 0.0  # ended at once


def test_partitions_have_their_own_hardware_and_spreads_are_ordered():
    energy = Energy(partitions={"gpu": {"core_watts": 9.4, "gpu_watts": 250}})
    assert factors_for(energy, "gpu").core_watts == 9.4
    assert factors_for(energy, "cpu").core_watts == 7.5
    with pytest.raises(ValueError, match="low <= value <= high"):
        Spread(value=1.0, low=1.2, high=1.5)
    with pytest.raises(ValueError, match="Extra inputs"):
        Energy(pue={"value": 1.2, "low": 1.1, "high": 1.3, "source": "x"})
