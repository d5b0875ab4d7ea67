"""sacct --parsable2 text -> an Arrow table of the needed fields, with line numbers (pure).

The header line names the fields, in any order; extra fields are ignored, and
a field that --format named twice is read once, after checking its columns
agree. Leading lines starting with '#' are comments (saved captures often
start with the command that made them). Arrow's multi-threaded CSV reader
checks every line's field count; lines with the wrong count are counted and
located (file line numbers), never read.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from collector.arrow_buffers import to_numpy
from collector.sacct import FIELDS, READ_FIELDS, REQUIRED_FIELDS

MISSING_TIMES = ("Unknown", "None", "")

# sacct's text: bytes, or a saved file mapped into memory (read in place, no copy).
Text = bytes | mmap.mmap


class SacctFormatError(ValueError):
    """The text is not sacct --parsable2 output with the needed fields."""


@dataclass(frozen=True)
class Lines:
    """The needed columns (one row per well-formed data line), each row's line
    number in the file (-1 where it cannot be told), and the malformed lines."""

    table: pa.Table
    line_numbers: np.ndarray
    malformed: int               # non-blank lines with the wrong number of fields
    wrong_count: list[int]       # their line numbers


def read_lines(data: Text) -> Lines:
    """Read the text; `SacctFormatError` when there is no usable header or a
    repeated field's columns differ."""
    names, skip_rows = _find_header(data)
    _check_header(names)
    data, repeats = _rename_repeats(_as_utf8(data), skip_rows, names)
    try:
        table, malformed = _read_table(data, skip_rows, typed=True, repeats=repeats, names=names)
    except pa.ArrowInvalid:  # some value is unreadable: read text, check each row
        table, malformed = _read_table(data, skip_rows, typed=False, repeats=repeats,
                                       names=names)
    header_line = skip_rows + 1
    n = table.num_rows
    if malformed:
        line_numbers, wrong_count = _line_numbers(data, header_line, len(names))
        if len(line_numbers) != n:  # a lone '\r' splits lines for Arrow, not for us
            line_numbers = np.full(n, -1, dtype=np.int64)
    else:
        line_numbers, wrong_count = header_line + 1 + np.arange(n, dtype=np.int64), []
    if repeats:
        table = _check_repeats(table, repeats, line_numbers)
    return Lines(table, line_numbers, malformed, wrong_count)


def _find_header(data: Text) -> tuple[list[str], int]:
    """(field names, number of lines before the header)."""
    pos = 0
    skipped = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl
        line = data[pos:end]
        if line.strip() and not line.lstrip().startswith(b"#"):
            return line.decode("utf-8", "replace").strip().split("|"), skipped
        pos = end + 1
        skipped += 1
    raise SacctFormatError("no header line: the sacct output is empty")


def _check_header(names: list[str]) -> None:
    missing = [f for f in REQUIRED_FIELDS if f not in names]
    if missing:
        raise SacctFormatError(
            f"the sacct header lacks the field(s) {', '.join(missing)} "
            f"(header: {'|'.join(names)[:300]!r}; run sacct with --parsable2 "
            f"--format={','.join(FIELDS)})"
        )


REPEAT_MARK = "~"  # a repeated field's later columns are read as State~2, State~3, ...


def _rename_repeats(data: Text, skip_rows: int, names: list[str]
                    ) -> tuple[Text, dict[str, list[str]]]:
    """sacct prints a field as often as --format names it. The header with the
    needed fields' repeats renamed (State, State~2, ...), and those names per field."""
    seen: dict[str, int] = {}
    renamed: list[str] = []
    repeats: dict[str, list[str]] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1 and name in READ_FIELDS:
            alias = f"{name}{REPEAT_MARK}{seen[name]}"
            repeats.setdefault(name, []).append(alias)
            name = alias
        renamed.append(name)
    if not repeats:
        return data, {}
    start = 0
    for _ in range(skip_rows):
        start = data.find(b"\n", start) + 1
    end = data.find(b"\n", start)
    end = len(data) if end < 0 else end
    header = "|".join(renamed).encode("utf-8")
    if data[start:end].endswith(b"\r"):
        header += b"\r"
    return data[:start] + header + data[end:], repeats


def _agree(a: pa.ChunkedArray, b: pa.ChunkedArray) -> np.ndarray:
    """Per row: the two columns hold the same value (both empty counts)."""
    if pa.types.is_dictionary(a.type):
        a, b = a.cast(pa.string()), b.cast(pa.string())
    same = to_numpy(pc.fill_null(pc.equal(a, b), False))
    return same | (to_numpy(a.is_null()) & to_numpy(b.is_null()))


def _check_repeats(table: pa.Table, repeats: dict[str, list[str]],
                   line_numbers: np.ndarray) -> pa.Table:
    """The table without the repeated columns, once each agrees with the first;
    `SacctFormatError` naming the field and the first line where they differ."""
    for name, aliases in repeats.items():
        for alias in aliases:
            differ = np.flatnonzero(~_agree(table[name], table[alias]))
            if len(differ):
                i = int(differ[0])
                where = f"line {int(line_numbers[i])}" if line_numbers[i] > 0 else f"row {i + 1}"
                raise SacctFormatError(
                    f"the sacct header names {name} {len(aliases) + 1} times and the columns "
                    f"differ in {len(differ)} row(s), first on {where}: "
                    f"'{table[name][i].as_py()}' vs '{table[alias][i].as_py()}'")
        table = table.drop_columns(aliases)
    return table


def _line_numbers(data: Text, header_line: int, n_fields: int) -> tuple[np.ndarray, list[int]]:
    """File line numbers of the well-formed data lines, and of the malformed ones.

    Only needed when the reader skipped a line: otherwise row i is simply on
    line header_line + 1 + i."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == ord("\n"))
    if data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    pipes_before = np.searchsorted(np.flatnonzero(arr == ord("|")), ends)
    counts = np.diff(pipes_before, prepend=0)
    starts = np.concatenate(([0], ends[:-1] + 1))
    numbers = 1 + np.arange(len(ends), dtype=np.int64)
    after = numbers > header_line
    blank = (ends - starts) == 0
    ok = after & (counts == n_fields - 1)
    return numbers[ok], numbers[after & ~ok & ~blank].tolist()


_DICT = pa.dictionary(pa.int32(), pa.string())
# Columns whose values repeat are dictionary-encoded by the reader itself.
_DICT_COLUMNS = ("User", "QOS", "State", "NNodes", "NCPUS", "ReqMem", "ReqTRES", "AllocTRES",
                 "ReqCPUS", "Reason", "TimelimitRaw", "Account", "Partition")
TIME_COLUMNS = ("Submit", "Start", "End", "Eligible")
# Read as integers by the typed reader (faster than hashing them as dictionaries).
_INT_COLUMNS = ("ElapsedRaw", "NNodes", "NCPUS", "ReqCPUS")


def _column_types(typed: bool, repeats: dict[str, list[str]]) -> dict[str, pa.DataType]:
    types = dict.fromkeys(READ_FIELDS, pa.string())
    types.update(dict.fromkeys(_DICT_COLUMNS, _DICT))
    if typed:
        types.update(dict.fromkeys(TIME_COLUMNS, pa.timestamp("s")))
        types.update(dict.fromkeys(_INT_COLUMNS, pa.int64()))
    for name, aliases in repeats.items():
        types.update(dict.fromkeys(aliases, types[name]))
    return types


def _read_table(data: Text, skip_rows: int, typed: bool, repeats: dict[str, list[str]],
                names: list[str]) -> tuple[pa.Table, int]:
    """The needed columns, and how many non-blank lines had a wrong field count.

    `typed` lets the (multi-threaded) reader parse the times and the counts
    (ElapsedRaw, NNodes, NCPUS, ReqCPUS) itself, with Unknown/None/empty as
    null; it raises ArrowInvalid on any other unreadable value, and the
    caller then reads strings and checks each row."""
    malformed = 0

    def on_invalid(row: pcsv.InvalidRow) -> str:
        nonlocal malformed
        if row.text.strip():
            malformed += 1
        return "skip"

    present = set(names)
    table = pcsv.read_csv(
        pa.py_buffer(data),
        read_options=pcsv.ReadOptions(skip_rows=skip_rows),
        # sacct -P never quotes or escapes; a '"' in a value is just a character.
        parse_options=pcsv.ParseOptions(delimiter="|", quote_char=False, escape_char=False,
                                         ignore_empty_lines=False, invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(
            include_columns=[*(f for f in READ_FIELDS if f in present),
                             *(a for v in repeats.values() for a in v)],
            column_types=_column_types(typed, repeats),
            strings_can_be_null=False, quoted_strings_can_be_null=False,
            null_values=list(MISSING_TIMES), timestamp_parsers=[pcsv.ISO8601]),
    )
    return table, malformed


def _as_utf8(data: Text) -> Text:
    ascii_only = data.isascii() if isinstance(data, bytes) else \
        not len(data) or int(np.frombuffer(data, dtype=np.uint8).max()) < 0x80
    if ascii_only:
        return data
    text = bytes(data)
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return text.decode("utf-8", "replace").encode("utf-8")
    return text
