"""Reading a trainees CSV as spreadsheets write it: UTF-8 with or without a BOM, ``;`` (French
Excel and LibreOffice) or ``,`` between fields, headers in French or English.

``parse_trainees`` is pure: bytes in, trainees out, or one ``CsvError`` listing every bad line
with its number and reason, so an instructor fixes the whole file at once and nothing is
imported from a half-good file.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import unicodedata

# Columns: our field, what people write in the header (compared without case, accents, spaces,
# dashes or underscores), and how an error names it.
COLUMNS = {
    "email": (
        {"email", "mail", "courriel", "adresseemail", "adressemail", "emailaddress"},
        "email (courriel)",
    ),
    "first_name": ({"firstname", "prenom", "givenname"}, "first name (prénom)"),
    "last_name": ({"lastname", "nom", "surname", "familyname", "nomdefamille"}, "last name (nom)"),
    "company": (
        {"company", "entreprise", "societe", "organisation", "organization", "employer", "employeur"},
        "company (entreprise)",
    ),
}
REQUIRED_VALUES = ("email", "first_name", "last_name")  # a trainee may come on their own: no company
EMAIL = re.compile(r"[^@\s,;<>()\"']+@[^@\s,;<>()\"'.]+(\.[^@\s,;<>()\"'.]+)+")
SEPARATORS = ";,\t"
SAVE_AS_UTF8 = "save it from the spreadsheet as 'CSV UTF-8' (Excel) or with character set UTF-8 (LibreOffice)"


@dataclasses.dataclass(frozen=True)
class Trainee:
    """One row of the file."""

    email: str
    first_name: str
    last_name: str
    company: str
    line: int = 0  # where it was in the file, for messages


@dataclasses.dataclass(frozen=True)
class BadLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class CsvError(ValueError):
    """The file cannot be imported; ``problems`` lists every bad line."""

    def __init__(self, source: str, problems: list[BadLine]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}: {p}" for p in problems)
        super().__init__(f"{source}: nothing imported, {len(problems)} problem(s):\n{lines}")


def header_key(text: str) -> str:
    """'Prénom ' -> 'prenom', 'E-mail' -> 'email': how two spellings of a header are compared."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[\s_\-.]", "", folded).casefold()


def _decode(data: bytes, source: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    problems = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            byte = raw[err.start]
            problems.append(
                BadLine(
                    number,
                    f"not UTF-8 (byte 0x{byte:02x} at column {err.start + 1}, such as an accent written "
                    f"in Latin-1 or Windows-1252): {SAVE_AS_UTF8}",
                )
            )
    raise CsvError(source, problems)


def _separator(header_line: str) -> str:
    """The separator of the header line: the most frequent of ; , and tab outside quotes."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {sep: unquoted.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ";"


def _columns(header: list[str], problems: list[BadLine]) -> dict[str, int]:
    aliases = {alias: field for field, (names, _) in COLUMNS.items() for alias in names}
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        field = aliases.get(header_key(name))
        if field is None:
            if name.strip():
                expected = ", ".join(label for _, label in COLUMNS.values())
                problems.append(BadLine(1, f"unknown column {name.strip()!r} (the columns are: {expected})"))
            else:
                problems.append(BadLine(1, f"column {index + 1} has no name in the header"))
        elif field in found:
            problems.append(BadLine(1, f"column {COLUMNS[field][1]} is given twice ({name.strip()!r})"))
        else:
            found[field] = index
    for field, (_, label) in COLUMNS.items():
        if field not in found:
            problems.append(BadLine(1, f"missing column {label}"))
    return found


def parse_trainees(data: bytes, source: str = "trainees.csv") -> list[Trainee]:
    """The trainees of a CSV file's bytes, in file order; CsvError naming every bad line."""
    text = _decode(data, source)
    if not text.strip():
        expected = ", ".join(label for _, label in COLUMNS.values())
        raise CsvError(source, [BadLine(1, f"the file is empty: expected a header line ({expected})")])
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip())
    if first:
        raise CsvError(
            source, [BadLine(1, "the header must be on the first line (it starts with blank lines)")]
        )
    reader = csv.reader(text.splitlines(keepends=True), delimiter=_separator(lines[0]), strict=True)
    problems: list[BadLine] = []
    try:
        header = next(reader)
    except csv.Error as err:
        raise CsvError(source, [BadLine(1, f"the header cannot be read: {err}")]) from None
    columns = _columns(header, problems)
    trainees: list[Trainee] = []
    seen: dict[str, int] = {}  # e-mail, case-folded -> line
    end = reader.line_num
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            problems.append(BadLine(start, f"cannot be read as CSV: {err}"))
            break
        end = reader.line_num
        if not any(v.strip() for v in row):
            continue  # a blank line, as spreadsheets leave at the end
        if len(row) != len(header):
            problems.append(
                BadLine(
                    start,
                    f"{len(row)} fields where the header has {len(header)} (a separator inside a "
                    "value? put that value between double quotes)",
                )
            )
            continue
        if len(columns) < len(COLUMNS):
            continue  # the header's problem is already said
        values = {f: unicodedata.normalize("NFC", row[i].strip()) for f, i in columns.items()}
        empty = [COLUMNS[f][1] for f in REQUIRED_VALUES if not values[f]]
        if empty:
            problems.append(BadLine(start, f"empty {', '.join(empty)}"))
            continue
        if not EMAIL.fullmatch(values["email"]):
            problems.append(BadLine(start, f"{values['email']!r} is not an e-mail address"))
            continue
        key = values["email"].casefold()
        if key in seen:
            problems.append(BadLine(start, f"e-mail {values['email']} is already on line {seen[key]}"))
            continue
        seen[key] = start
        trainees.append(Trainee(line=start, **values))
    if not problems and not trainees:
        problems.append(BadLine(2, "the file has a header but no trainee"))
    if problems:
        raise CsvError(source, problems)
    return trainees
