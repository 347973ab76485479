"""CPU time of process trees and cgroups (footprint/sampler.py), parsed from sample text."""

import pytest

from footprint.sampler import (
    parse_cgroup_cpu_stat,
    parse_cpuacct_usage,
    parse_proc_stat,
    tree_cpu_seconds,
)

# /proc/<pid>/stat of a kernel whose name holds a space and a parenthesis (the name is free text).
STAT = (
    "4242 (ipykernel (1) x) S 4200 4242 4200 0 -1 4194560 5000 0 0 0 "
    "250 50 30 20 20 0 3 0 123456 456789 1234 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0"
)
CPU_STAT_V2 = "usage_usec 12345678\nuser_usec 10000000\nsystem_usec 2345678\nnr_periods 0\n"


def test_proc_stat_gives_the_parent_and_the_cpu_ticks_of_the_process_and_its_reaped_children():
    assert parse_proc_stat(STAT) == (4200, 250 + 50 + 30 + 20)


def test_a_tree_sums_its_live_descendants_only():
    stats = {
        1: (0, 10_000),  # init: not ours
        100: (1, 100),  # the session's server
        101: (100, 300),  # a kernel
        102: (101, 50),  # its child
        200: (1, 999),  # another learner's server
    }
    assert tree_cpu_seconds(stats, 100, ticks_per_second=100) == pytest.approx(4.5)
    assert tree_cpu_seconds(stats, 999, ticks_per_second=100) == 0  # ended


def test_cgroup_cpu_time_v2_and_v1():
    assert parse_cgroup_cpu_stat(CPU_STAT_V2) == pytest.approx(12.345678)
    assert parse_cpuacct_usage("2500000000\n") == pytest.approx(2.5)
    with pytest.raises(ValueError, match="usage_usec"):
        parse_cgroup_cpu_stat("nr_periods 0\n")
