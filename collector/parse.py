"""sacct --parsable2 text -> a typed job table (pure: bytes in, data out).

The header line names the fields, in any order; extra fields are ignored.
Leading lines starting with '#' are comments (saved captures often start with
the command that made them). Step lines (JobID with a '.', or an empty User)
are skipped. A line with the wrong number of fields, a non-numeric number, an
unreadable time or an unreadable memory/TRES value is skipped and counted;
one bad line never stops the run.

Columns of the job table (one row per job allocation):
  job_id_raw (str), user, qos, state (category),
  submit, start, end (float epoch seconds; NaN for Unknown/None),
  elapsed, nnodes, cpus, gpus, mem_gib (float).

Work is vectorised: values that repeat (users, states, TRES strings, ReqMem,
CPU counts) are parsed once per distinct value, then spread with the codes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from collector.sacct import FIELDS
from collector.slurm_formats import PER_CPU, PER_NODE, parse_req_mem, tres_gpus, tres_mem_mib

MISSING_TIMES = ("Unknown", "None", "")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
MAX_LINE_NUMBERS = 10

JOB_COLUMNS = ("job_id_raw", "user", "qos", "state", "submit", "start", "end",
               "elapsed", "nnodes", "cpus", "gpus", "mem_gib")


class SacctFormatError(ValueError):
    """The text is not sacct --parsable2 output with the needed fields."""


@dataclass(frozen=True)
class ParseResult:
    jobs: pd.DataFrame
    data_lines: int = 0
    step_lines: int = 0
    bad_lines: int = 0
    bad_line_numbers: tuple[int, ...] = ()
    bad_reasons: dict[str, int] = field(default_factory=dict)

    def bad_summary(self) -> str:
        """One line for the log: how many lines were skipped, where and why."""
        where = ", ".join(map(str, self.bad_line_numbers))
        if self.bad_lines > len(self.bad_line_numbers):
            where += ", ..."
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.bad_reasons.items()))
        return f"skipped {self.bad_lines} bad line(s) (line {where}): {why}"


def empty_jobs() -> pd.DataFrame:
    """A job table with no rows and the right columns and types."""
    cols: dict[str, object] = {"job_id_raw": pd.Series([], dtype=object)}
    for name in ("user", "qos", "state"):
        cols[name] = pd.Categorical([])
    for name in JOB_COLUMNS[4:]:
        cols[name] = np.array([], dtype=np.float64)
    return pd.DataFrame(cols)


# --- lines --------------------------------------------------------------------


def _split_header(data: bytes) -> tuple[list[str], bytes, int]:
    """(field names, body bytes, line number of the body's first line)."""
    pos = 0
    line_no = 1
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl
        line = data[pos:end]
        if line.strip() and not line.lstrip().startswith(b"#"):
            header = line.decode("utf-8", "replace").strip()
            body = b"" if nl < 0 else data[nl + 1:]
            return header.split("|"), body, line_no + 1
        pos = end + 1
        line_no += 1
    raise SacctFormatError("no header line: the sacct output is empty")


def _check_header(names: list[str]) -> None:
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise SacctFormatError(
            f"the sacct header lacks the field(s) {', '.join(missing)} "
            f"(header: {'|'.join(names)[:300]!r}; run sacct with --parsable2 "
            f"--format={','.join(FIELDS)})"
        )
    dupes = sorted({n for n in names if names.count(n) > 1 and n in FIELDS})
    if dupes:
        raise SacctFormatError(f"the sacct header names {', '.join(dupes)} more than once")


def _well_formed(body: bytes, n_fields: int, first_line_no: int, *, trust_total: bool = True
                 ) -> tuple[bytes, np.ndarray | None, list[int]]:
    """Drop lines with the wrong number of fields.

    Returns the clean body, the file line number of each kept line (None when
    they are simply consecutive) and the line numbers dropped. The fast path
    checks only the total count of separators: pandas rejects any line with too
    many fields, so equal totals and no such line mean every line is right
    (`trust_total=False` is the second pass after pandas found one).
    """
    if body and not body.endswith(b"\n"):
        body += b"\n"
    n_lines = body.count(b"\n")
    irregular = body.startswith(b"\n") or b"\n\n" in body or b"\r" in body
    if trust_total and not irregular and body.count(b"|") == n_lines * (n_fields - 1):
        return body, None, []
    kept: list[bytes] = []
    numbers: list[int] = []
    bad: list[int] = []
    for i, line in enumerate(body.split(b"\n")[:-1]):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        if line.count(b"|") == n_fields - 1:
            kept.append(line)
            numbers.append(first_line_no + i)
        else:
            bad.append(first_line_no + i)
    clean = b"\n".join(kept) + b"\n" if kept else b""
    return clean, np.asarray(numbers, dtype=np.int64), bad


class _TooManyFields(Exception):
    pass


def _read_table(body: bytes, names: list[str]) -> pd.DataFrame:
    categorical = ("User", "QOS", "State", "NNodes", "NCPUS", "ReqMem", "ReqTRES", "AllocTRES")
    dtypes = {name: ("category" if name in categorical else str) for name in FIELDS}
    try:
        return pd.read_csv(
            io.BytesIO(body), sep="|", header=None, names=names, usecols=list(FIELDS),
            dtype=dtypes, na_filter=False, quoting=csv.QUOTE_NONE, engine="c",
            encoding_errors="replace", skip_blank_lines=False, on_bad_lines="error",
        )
    except pd.errors.ParserError as err:
        raise _TooManyFields(str(err)) from err


# --- values -------------------------------------------------------------------


def _per_value(col: pd.Series, parse: Callable[[str], object]) -> tuple[list[object], np.ndarray]:
    """Parse each distinct value of a categorical column once.

    Returns the parsed value per category (None where it failed) and the codes."""
    cat = col.cat
    parsed: list[object] = []
    for value in cat.categories:
        try:
            parsed.append(parse(str(value)))
        except ValueError:
            parsed.append(None)
    return parsed, cat.codes.to_numpy()


def _numbers(col: pd.Series) -> np.ndarray:
    """A categorical column of non-negative numbers; NaN where unreadable."""
    def number(text: str) -> float:
        n = float(text)
        if not np.isfinite(n) or n < 0:
            raise ValueError(text)
        return n

    parsed, codes = _per_value(col, number)
    table = np.array([np.nan if p is None else p for p in parsed] + [np.nan], dtype=np.float64)
    return table[codes]


def _times(col: pd.Series, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds (NaN for Unknown/None) and a mask of unreadable times."""
    missing = col.isin(MISSING_TIMES).to_numpy()
    parsed = pd.to_datetime(col, format=TIME_FORMAT, errors="coerce")
    bad = parsed.isna().to_numpy() & ~missing
    if tz != "UTC":
        # Local times without an offset: in the hour that repeats when daylight
        # saving ends, take the first (daylight) reading; in the hour that is
        # skipped when it starts, move forward. Live collection avoids both by
        # running sacct with TZ=UTC; this only matters for saved files.
        parsed = parsed.dt.tz_localize(tz, ambiguous=np.ones(len(parsed), dtype=bool),
                                       nonexistent="shift_forward").dt.tz_convert(None)
    seconds = parsed.to_numpy().astype("datetime64[s]").astype(np.int64).astype(np.float64)
    seconds[parsed.isna().to_numpy()] = np.nan
    return seconds, bad


def _elapsed(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)


# --- the job table ------------------------------------------------------------


def parse_sacct(data: bytes, tz: str = "UTC") -> ParseResult:
    """Parse `sacct --parsable2` output whose times are local times in `tz`."""
    names, body, first_line_no = _split_header(data)
    _check_header(names)
    clean, line_numbers, wrong_count = _well_formed(body, len(names), first_line_no)
    try:
        raw = _read_table(clean, names) if clean else None
    except _TooManyFields:
        clean, line_numbers, wrong_count = _well_formed(body, len(names), first_line_no,
                                                        trust_total=False)
        raw = _read_table(clean, names) if clean else None
    if raw is None:
        return ParseResult(
            jobs=empty_jobs(), data_lines=len(wrong_count), bad_lines=len(wrong_count),
            bad_line_numbers=tuple(wrong_count[:MAX_LINE_NUMBERS]),
            bad_reasons={"wrong number of fields": len(wrong_count)} if wrong_count else {},
        )
    if line_numbers is None:
        line_numbers = np.arange(first_line_no, first_line_no + len(raw), dtype=np.int64)

    n = len(raw)
    user = raw["User"]
    is_step = ((user == "").to_numpy()
               | raw["JobID"].str.contains(".", regex=False).to_numpy())

    cpus = _numbers(raw["NCPUS"])
    nnodes = _numbers(raw["NNodes"])
    elapsed = _elapsed(raw["ElapsedRaw"])
    submit, bad_submit = _times(raw["Submit"], tz)
    start, bad_start = _times(raw["Start"], tz)
    end, bad_end = _times(raw["End"], tz)

    a_gpu, a_codes = _per_value(raw["AllocTRES"], tres_gpus_or_nan)
    a_mem, _ = _per_value(raw["AllocTRES"], tres_mem_or_nan)
    a_empty = np.array([str(v).strip() == "" for v in raw["AllocTRES"].cat.categories] + [True])
    r_gpu, r_codes = _per_value(raw["ReqTRES"], tres_gpus_or_nan)
    req_mem, m_codes = _per_value(raw["ReqMem"], parse_req_mem)

    def table(values: list[object]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values] + [np.nan], dtype=np.float64)

    a_gpu_t, a_mem_t, r_gpu_t = table(a_gpu), table(a_mem), table(r_gpu)
    bad_tres = (np.array([v is None for v in a_gpu] + [False])[a_codes]
                | np.array([v is None for v in a_mem] + [False])[a_codes]
                | np.array([v is None for v in r_gpu] + [False])[r_codes])
    rm_mib = np.array([v[0] if v else np.nan for v in req_mem] + [np.nan])[m_codes]  # type: ignore[index]
    rm_per = np.array([v[1] if v else "" for v in req_mem] + [""], dtype=object)[m_codes]  # type: ignore[index]
    bad_mem = np.isnan(rm_mib)

    alloc_empty = a_empty[a_codes]
    # GPUs from AllocTRES; from ReqTRES only where AllocTRES is empty.
    gpus = np.nan_to_num(np.where(alloc_empty, r_gpu_t[r_codes], a_gpu_t[a_codes]), nan=0.0)
    # Memory from AllocTRES mem=; from ReqMem where AllocTRES has none.
    req_total = rm_mib * np.where(rm_per == PER_CPU, cpus, np.where(rm_per == PER_NODE, nnodes, 1.0))
    alloc_mem = a_mem_t[a_codes]
    mem_mib = np.where(np.isnan(alloc_mem), req_total, alloc_mem)

    reasons = {
        "non-numeric NCPUS/NNodes/ElapsedRaw": np.isnan(cpus) | np.isnan(nnodes) | np.isnan(elapsed),
        "unreadable time": bad_submit | bad_start | bad_end,
        "unreadable TRES or ReqMem": bad_tres | (bad_mem & np.isnan(alloc_mem)),
    }
    bad = np.zeros(n, dtype=bool)
    for mask in reasons.values():
        bad |= mask
    bad &= ~is_step
    keep = ~bad & ~is_step

    bad_numbers = np.sort(np.concatenate([np.asarray(wrong_count, dtype=np.int64),
                                          line_numbers[bad]]))
    counts = {reason: int((mask & ~is_step).sum()) for reason, mask in reasons.items()}
    if wrong_count:
        counts["wrong number of fields"] = len(wrong_count)
    counts = {k: v for k, v in counts.items() if v}

    jobs = pd.DataFrame({
        "job_id_raw": raw["JobIDRaw"].to_numpy(dtype=object)[keep],
        "user": user[keep].cat.remove_unused_categories().to_numpy(),
        "qos": raw["QOS"][keep].cat.remove_unused_categories().to_numpy(),
        "state": raw["State"][keep].cat.remove_unused_categories().to_numpy(),
        "submit": submit[keep], "start": start[keep], "end": end[keep],
        "elapsed": elapsed[keep], "nnodes": nnodes[keep], "cpus": cpus[keep],
        "gpus": gpus[keep], "mem_gib": mem_mib[keep] / 1024.0,
    })
    for name in ("user", "qos", "state"):
        jobs[name] = jobs[name].astype("category")
    return ParseResult(
        jobs=jobs, data_lines=n + len(wrong_count), step_lines=int(is_step.sum()),
        bad_lines=len(bad_numbers), bad_line_numbers=tuple(int(x) for x in bad_numbers[:MAX_LINE_NUMBERS]),
        bad_reasons=counts,
    )


def tres_gpus_or_nan(text: str) -> float:
    n = tres_gpus(text)
    return np.nan if n is None else n


def tres_mem_or_nan(text: str) -> float:
    n = tres_mem_mib(text)
    return np.nan if n is None else n
