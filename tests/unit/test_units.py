import pytest

from hub_config.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4G", 4 * 1024**3), ("512M", 512 * 1024**2), ("1.5GiB", 1536 * 1024**2), ("2GB", 2 * 1024**3),
        ("2g", 2 * 1024**3), ("2gB", 2 * 1024**3), ("64B", 64), (1024, 1024), ("0", 0),
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
    [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("04:00:00", 14400), ("1-00:00:00", 86400), ("30:00", 1800), (60, 60)],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["2h30", "-1", -5, "h", "1m1h", "1h1h", "", "soon"])
def test_bad_durations_say_what_to_write(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_formatting_round_trips():
    assert format_size(parse_size("4G")) == "4G"
    assert format_duration(parse_duration("1h30m")) == "1h30m"
