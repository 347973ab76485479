import pytest

from hub_config.units import (
    format_duration,
    format_size,
    parse_duration,
    parse_size,
    slurm_megabytes,
    slurm_time,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4G", 4 * 1024**3),
        ("512M", 512 * 1024**2),
        ("1.5GiB", 1536 * 1024**2),
        ("2GB", 2 * 1024**3),
        ("2g", 2 * 1024**3),
        ("2gB", 2 * 1024**3),
        ("64B", 64),
        ("0B", 0),
        ("2 GiB", 2 * 1024**3),
    ],
)
def test_sizes_are_binary_as_in_slurm(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["4 Go", "4Go", "-1", -1, "G", "4X", "", True])
def test_bad_sizes_say_what_to_write(text):
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


@pytest.mark.parametrize(
    "text, advice",
    [("2Gb", "write 2G (or 2GB)"), ("2gb", "2G"), ("1.5Gib", "write 1.5G"), ("512mb", "512M"), ("8b", "8B")],
)
def test_a_lowercase_b_is_refused_as_bits_or_bytes(text, advice):
    with pytest.raises(ValueError, match="ambiguous: a lowercase b means bits") as refused:
        parse_size(text)
    assert advice in str(refused.value)


def test_iB_needs_a_unit():
    with pytest.raises(ValueError, match="not a size"):
        parse_size("4iB")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("90s", 90),
        ("30m", 1800),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("0s", 0),
        # Slurm's forms, with Slurm's meaning
        ("30:00", 1800),
        ("04:00:00", 14400),
        ("1-00:00:00", 86400),
        ("1-04", 100800),
        ("1-04:30", 102600),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["2h30", "-1", -5, "h", "1m1h", "1h1h", "", "soon"])
def test_bad_durations_say_what_to_write(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [2048, "2048", 0, "1.5", 2.5])
def test_a_bare_number_is_refused_and_a_unit_asked_for(value):
    with pytest.raises(ValueError, match="has no unit: write a size") as size:
        parse_size(value)
    assert f"{value}M" in str(size.value) or "1.5M" in str(size.value)
    with pytest.raises(ValueError, match="has no unit: write a duration"):
        parse_duration(value)


def test_formatting_round_trips():
    assert format_size(parse_size("4G")) == "4G"
    assert format_duration(parse_duration("1h30m")) == "1h30m"
    for n_bytes in (0, 1000, 1536 * 1024**2, 3 * 1024**4):
        assert parse_size(format_size(n_bytes)) == n_bytes
    for seconds in (0, 59, 5400, 86400 + 61):
        assert parse_duration(format_duration(seconds)) == seconds


def test_sbatch_forms_round_up():
    assert slurm_time(90) == "0-00:02:00" and slurm_time(86400 + 3600) == "1-01:00:00"
    assert slurm_megabytes(1) == 1 and slurm_megabytes(2 * 1024**3) == 2048


def test_the_units_module_imports_nothing_but_the_standard_library():
    """spawners/ imports it (DESIGN.md): it may not bring pydantic or the rest of hub_config along."""
    import ast
    from pathlib import Path

    import hub_config
    from hub_config import units

    for module in (units, hub_config):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "." for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert imported <= {"__future__", "re"}, (module.__name__, imported)


def test_sizes_of_files_are_rounded_to_a_tenth():
    assert format_size(10001, exact=False) == "9.8K" and format_size(70 * 1024, exact=False) == "70.0K"
    assert format_size(512, exact=False) == "512B" and format_size(3 * 1024**3 // 2, exact=False) == "1.5G"
