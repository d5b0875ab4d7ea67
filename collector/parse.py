"""sacct --parsable2 text -> a typed job table (pure: bytes in, data out).

collector/sacct_text.py reads the lines (header, repeated fields, field
counts); this module turns the columns into values. Step lines (JobID with
a '.', or an empty User) are skipped. A line with the wrong number of fields, a non-numeric number, an
unreadable time or an unreadable memory/TRES value is skipped and counted;
one bad line never stops the run.

The result is a `JobTable` of numpy arrays, one row per job allocation.

The text is read by Arrow's multi-threaded CSV reader (about 5x faster than
pandas' on a million lines, and it checks every line's field count), then
converted with Arrow compute kernels and numpy. Values that repeat (users,
states, TRES strings, ReqMem, CPU counts) are parsed once per distinct value
and spread with the dictionary indices: no Python loop per line. pandas is
not imported here: it adds a third of a second to every collection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from collector.arrow_buffers import from_bools, from_numpy, to_floats, to_numpy
from collector.efficiency import StepUsage, cpu_seconds, fold_steps
from collector.jobtable import USAGE_COLUMNS, JobTable
from collector.reasons import bits as reason_bits
from collector.sacct import USAGE_FIELDS, USAGE_QUERY_FIELDS
from collector.sacct_text import MISSING_TIMES, TIME_COLUMNS, SacctFormatError, Text, read_lines
from collector.slurm_formats import (
    HOLDING_STATES,
    PER_CPU,
    PER_NODE,
    parse_req_mem,
    tres_gpus,
    tres_mem_mib,
)

_MISSING_TIME = "^(" + "|".join(MISSING_TIMES) + ")$"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
MAX_LINE_NUMBERS = 10



@dataclass(frozen=True)
class ParseResult:
    jobs: JobTable
    data_lines: int = 0
    step_lines: int = 0
    bad_lines: int = 0
    bad_line_numbers: tuple[int, ...] = ()
    bad_reasons: dict[str, int] = field(default_factory=dict)
    # Values skipped for one field only (the rest of the job counts): field -> count.
    bad_fields: dict[str, int] = field(default_factory=dict)

    def bad_summary(self) -> str:
        """One line for the log: how many lines were skipped, where and why."""
        where = ", ".join(map(str, self.bad_line_numbers))
        if self.bad_lines > len(self.bad_line_numbers):
            where += ", ..."
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.bad_reasons.items()))
        lines = f"skipped {self.bad_lines} bad line(s) (line {where}): {why}" \
            if self.bad_lines else ""
        fields = ", ".join(f"{n} unreadable {name}" for name, n in sorted(self.bad_fields.items()))
        return "; ".join(x for x in (lines, f"read as not recorded: {fields}" if fields else "")
                         if x)


# --- values -------------------------------------------------------------------


def _distinct(col: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """(distinct values, index of each row's value) of a dictionary column."""
    encoded = col.unify_dictionaries().combine_chunks() if col.num_chunks else \
        pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string()))
    return encoded.dictionary.to_pylist(), to_numpy(encoded.indices).astype(np.int64)


def _apply(distinct: tuple[list[str], np.ndarray], parse: Callable[[str], float]
           ) -> tuple[np.ndarray, np.ndarray]:
    """(value per row, row failed to parse): `parse` runs once per distinct value."""
    values, idx = distinct
    parsed = np.empty(len(values), dtype=np.float64)
    failed = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        try:
            parsed[i] = parse(value)
        except ValueError:
            parsed[i], failed[i] = np.nan, True
    return parsed[idx], failed[idx]


def _codes(values: list[str], idx: np.ndarray, normalise: Callable[[str], str] = str
           ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes into sorted, normalised names."""
    names = [normalise(v) for v in values]
    table = tuple(sorted(set(names)))
    position = {name: i for i, name in enumerate(table)}
    lookup = np.array([position[n] for n in names], dtype=np.int64)
    return lookup[idx] if len(values) else idx.astype(np.int64), table


def _compact(codes: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Drop the names no row uses (e.g. the empty User of step lines)."""
    used = np.bincount(codes, minlength=len(names)) > 0
    remap = np.cumsum(used) - 1
    return remap[codes], tuple(n for n, u in zip(names, used.tolist(), strict=True) if u)


def _first_partition(text: str) -> str:
    """A pending job may list several partitions ("hpg-default,gpu"): it
    counts under the first until it starts (then sacct names the one it ran in)."""
    return text.split(",", 1)[0].strip()


def _state_name(state: str) -> str:
    return state.split(" ", 1)[0]


def _reason_name(reason: str) -> str:
    """'None' and '' are no reason; squeue's parentheses are not part of it."""
    reason = reason.strip().strip("()")
    return "" if reason == "None" else reason


def _integers(col: pa.ChunkedArray) -> np.ndarray:
    """Non-negative integers; NaN where the text is not one (or null)."""
    if pa.types.is_integer(col.type):  # parsed by the reader
        return to_floats(col)
    try:
        return to_numpy(col.cast(pa.int64())).astype(np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # step lines ('17.batch') or a bad value: check each row
    digits = to_numpy(pc.match_substring_regex(col, r"^\d{1,18}$"))
    zeroed = pc.replace_substring_regex(col, pattern=r"^(.*\D.*|.{19,}|)$", replacement="0")
    return np.where(digits, to_numpy(zeroed.cast(pa.int64())).astype(np.float64), np.nan)


def _count(text: str) -> float:
    n = float(text)
    if not np.isfinite(n) or n < 0:
        raise ValueError(text)
    return n


def _counts(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(count per row, unreadable) of a column of non-negative counts."""
    if pa.types.is_integer(col.type):  # parsed by the reader: only empty or negative is bad
        values = to_floats(col)
        return values, ~(values >= 0)
    return _apply(_distinct(col), _count)


_QUARTER = 900  # zone offsets change only on quarter hours of local time


def local_to_utc(local: np.ndarray, tz: str) -> np.ndarray:
    """Local wall-clock seconds (as if UTC; NaN for none) -> true epoch seconds
    in zone `tz`.

    The offset is looked up per quarter hour of the span the data covers, with
    zoneinfo, and spread with numpy. A wall time in the hour that repeats when
    daylight saving ends takes its first (daylight) reading; one in the hour
    skipped when it starts is read with the offset before the change, i.e.
    moved forward by the gap. Live collection never needs this: sacct runs
    with TZ=UTC. Saved files in local time do."""
    if not len(local) or np.isnan(local).all():
        return local
    zone = ZoneInfo(tz)
    quarter = np.floor_divide(local, _QUARTER)
    first, last = int(np.nanmin(quarter)), int(np.nanmax(quarter))
    offsets = np.array([
        (zone.utcoffset(datetime.fromtimestamp(q * _QUARTER, UTC).replace(tzinfo=None))
         or timedelta(0)).total_seconds() for q in range(first, last + 1)
    ])
    quarter -= first
    index = np.nan_to_num(quarter, copy=False).astype(np.int64)  # NaN rows stay NaN below
    shifted = offsets[index]
    return np.subtract(local, shifted, out=shifted)


def _epoch(parsed: pa.ChunkedArray, tz: str) -> np.ndarray:
    """Timestamps (local wall time in `tz`) -> epoch seconds, NaN where null."""
    seconds = to_floats(parsed)
    return seconds if tz == "UTC" else local_to_utc(seconds, tz)


def _times(col: pa.ChunkedArray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds (NaN for Unknown/None) and a mask of unreadable times."""
    if pa.types.is_timestamp(col.type):  # parsed by the reader: nothing unreadable
        return _epoch(col, tz), np.zeros(len(col), dtype=bool)
    parsed = pc.strptime(col, format=TIME_FORMAT, unit="s", error_is_null=True)
    null = to_numpy(parsed.is_null())
    bad = null.copy()
    if null.any():  # only the few unparsed values need a second look
        unparsed = col.filter(parsed.is_null())
        bad[null] = ~to_numpy(pc.match_substring_regex(unparsed, _MISSING_TIME))
    return _epoch(parsed, tz), bad


def _tres_gpus(text: str) -> float:
    n = tres_gpus(text)
    return np.nan if n is None else n


def _tres_mem(text: str) -> float:
    n = tres_mem_mib(text)
    return np.nan if n is None else n


def _req_mem_mib(text: str) -> float:
    return parse_req_mem(text)[0]


def _req_mem_per_cpu(text: str) -> float:
    return float(parse_req_mem(text)[1] == PER_CPU)


def _req_mem_per_node(text: str) -> float:
    return float(parse_req_mem(text)[1] == PER_NODE)


def _timelimit_seconds(text: str) -> float:
    """TimelimitRaw (minutes) in seconds; NaN for none (UNLIMITED, Partition_Limit, empty)."""
    text = text.strip()
    if text.isdigit():
        return float(text) * 60.0
    if text in ("", "UNLIMITED", "Partition_Limit", "INVALID", "NOT_SET"):
        return np.nan
    raise ValueError(text)


_ARRAY_RE = re.compile(r"_\[([0-9,\-%:]+)\]$")


def array_tasks(job_id: str) -> float:
    """How many array tasks a row stands for: a pending array's row is one line
    for all its tasks not yet started ('175_[1-4,9%2]': 5); any other row is 1."""
    m = _ARRAY_RE.search(job_id)
    if not m:
        return 1.0
    n = 0
    for part in m.group(1).split("%")[0].split(","):
        first, _, rest = part.partition("-")
        last, _, step = rest.partition(":")
        if not first.isdigit() or (last and not last.isdigit()) or (step and not step.isdigit()):
            raise ValueError(job_id)
        hi = int(last) if last else int(first)
        n += max(0, (hi - int(first)) // (int(step) if step else 1) + 1)
    return float(max(n, 1))


def _tasks(job_ids: pa.ChunkedArray, never_started: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tasks per row, unreadable): only rows that never started can stand for
    several array tasks ('_['), so only those are looked at."""
    n = len(job_ids)
    tasks, bad = np.ones(n), np.zeros(n, dtype=bool)
    candidates = np.flatnonzero(never_started)
    if not len(candidates):
        return tasks, bad
    ids = job_ids.take(from_numpy(candidates.astype(np.int64), pa.int64()))
    hits = to_numpy(pc.match_substring(ids.cast(pa.string()), "_["))
    rows = candidates[hits]
    picked = ids.take(from_numpy(np.flatnonzero(hits).astype(np.int64), pa.int64()))
    for i, text in zip(rows.tolist(), picked.to_pylist(), strict=True):
        try:
            tasks[i] = array_tasks(str(text))
        except ValueError:
            bad[i] = True
    return tasks, bad


def _ended(start: np.ndarray, end: np.ndarray, elapsed: np.ndarray, state: np.ndarray,
           states: tuple[str, ...]) -> np.ndarray:
    """End, with Start + ElapsedRaw where End is Unknown but the state says the
    job no longer holds its allocation (slurm_formats.HOLDING_STATES)."""
    holding = np.array([s in HOLDING_STATES for s in states] or [False])[state]
    fix = np.isnan(end) & ~np.isnan(start) & ~holding
    if not fix.any():
        return end
    return np.where(fix, start + elapsed, end)


# --- the job table ------------------------------------------------------------


def parse_sacct(data: Text, tz: str = "UTC") -> ParseResult:
    """Parse `sacct --parsable2` output whose times are local times in `tz`
    (bytes, or a saved file mapped into memory)."""
    text = read_lines(data)
    table, malformed, line_numbers = text.table, text.malformed, text.line_numbers
    wrong_count = text.wrong_count
    n = table.num_rows
    if n == 0:
        return ParseResult(
            jobs=JobTable.empty(), data_lines=malformed, bad_lines=malformed,
            bad_line_numbers=tuple(wrong_count[:MAX_LINE_NUMBERS]),
            bad_reasons={"wrong number of fields": malformed} if malformed else {},
        )

    # Step lines go first, so every later kernel sees only allocations.
    user_values, user_idx = _distinct(table["User"])
    blank_user = np.array([not v.strip() for v in user_values] or [False])[user_idx]
    is_step = to_numpy(pc.match_substring(table["JobID"], ".")) | blank_user
    n_steps = int(is_step.sum())
    names = table.column_names
    steps = _step_usage(table, is_step) if n_steps and "MaxRSS" in names else None
    if n_steps:
        table = table.filter(from_bools(~is_step))
        line_numbers, user_idx = line_numbers[~is_step], user_idx[~is_step]
    n = table.num_rows

    job_id = _integers(table["JobIDRaw"])
    usage, bad_usage = _usage(table, n, steps)
    cpus, bad_cpus = _counts(table["NCPUS"])
    nnodes, bad_nodes = _counts(table["NNodes"])
    elapsed = _integers(table["ElapsedRaw"])
    # Arrow's kernels release the GIL: the time columns convert in parallel.
    times = [c for c in TIME_COLUMNS if c in names]
    with ThreadPoolExecutor(max_workers=len(times)) as pool:
        converted = dict(zip(times, pool.map(lambda name: _times(table[name], tz), times),
                             strict=True))
    no_time = (np.full(n, np.nan), np.zeros(n, dtype=bool))
    (submit, bad_submit), (start, bad_start), (end, bad_end), (eligible, bad_eligible) = (
        converted.get(c, no_time) for c in TIME_COLUMNS)

    alloc = _distinct(table["AllocTRES"])
    alloc_gpus, bad_a1 = _apply(alloc, _tres_gpus)
    alloc_mem, bad_a2 = _apply(alloc, _tres_mem)
    alloc_empty, _ = _apply(alloc, lambda text: float(not text.strip()))
    req_tres = _distinct(table["ReqTRES"])
    req_gpus, bad_r = _apply(req_tres, _tres_gpus)
    req_mem = _distinct(table["ReqMem"])
    req_mib, bad_m = _apply(req_mem, _req_mem_mib)
    per_cpu, _ = _apply(req_mem, _req_mem_per_cpu)
    per_node, _ = _apply(req_mem, _req_mem_per_node)

    # GPUs from AllocTRES; from ReqTRES only where AllocTRES is empty.
    gpus = np.nan_to_num(np.where(alloc_empty == 1, req_gpus, alloc_gpus), nan=0.0)
    # Memory from AllocTRES mem=; from ReqMem (per job, CPU or node) where it has none.
    req_total = req_mib * np.where(per_cpu == 1, cpus, np.where(per_node == 1, nnodes, 1.0))
    mem_mib = np.where(np.isnan(alloc_mem), req_total, alloc_mem)

    # What a waiting job asks for, per task: ReqCPUS (NCPUS where the field is
    # absent), GPUs and memory from ReqTRES (memory from ReqMem where it has none).
    no_value = (np.zeros(n), np.zeros(n, dtype=bool))
    req_cpus, bad_rc = _counts(table["ReqCPUS"]) if "ReqCPUS" in names else (cpus, no_value[1])
    req_tres_mem, _ = _apply(req_tres, _tres_mem)
    req_mem_gib = np.where(np.isnan(req_tres_mem), req_total, req_tres_mem) / 1024.0
    req_gpus = np.nan_to_num(req_gpus, nan=0.0)
    timelimit, bad_tl = _apply(_distinct(table["TimelimitRaw"]), _timelimit_seconds) \
        if "TimelimitRaw" in names else (np.full(n, np.nan), no_value[1])
    # Nothing allocated means it never ran, whatever Start says: Slurm 22.05 gives
    # a scrontab job cancelled while it waited its Submit as Start and the wait
    # as ElapsedRaw (NodeList "None assigned"), and a rejected submission Start =
    # End (tests/data/slurm-22.05/sacct_scrontab_runs.txt, sacct_avery.txt).
    never_ran = (alloc_empty == 1) & ~np.isnan(start)
    if never_ran.any():
        start = np.where(never_ran, np.nan, start)
        elapsed = np.where(never_ran, 0.0, elapsed)
    tasks, bad_tasks = _tasks(table["JobID"], np.isnan(start) & ~bad_start)

    reasons = {
        "non-numeric JobIDRaw/NCPUS/NNodes/ElapsedRaw/ReqCPUS/TimelimitRaw":
            np.isnan(job_id) | bad_cpus | bad_nodes | np.isnan(elapsed) | bad_rc | bad_tl,
        "unreadable time": bad_submit | bad_start | bad_end | bad_eligible,
        "unreadable TRES or ReqMem": bad_a1 | bad_a2 | bad_r | (bad_m & np.isnan(alloc_mem)),
        "unreadable array JobID": bad_tasks,
    }
    bad = np.zeros(n, dtype=bool)
    for mask in reasons.values():
        bad |= mask
    # Every column is cut to the good rows; a slice (a view, no copy) when all are.
    keep: slice | np.ndarray = ~bad if bad.any() else slice(None)

    counts = {reason: int(mask.sum()) for reason, mask in reasons.items()}
    counts["wrong number of fields"] = malformed
    # Line numbers are -1 only where Arrow and numpy split lines differently.
    bad_numbers = np.sort(np.concatenate([np.asarray(wrong_count, dtype=np.int64),
                                          line_numbers[bad]]))
    user, users = _codes(user_values, user_idx)
    qos, qos_names = _codes(*_distinct(table["QOS"]))
    state, states = _codes(*_distinct(table["State"]), normalise=_state_name)
    if "Reason" in names:
        reason, reason_names = _codes(*_distinct(table["Reason"]), normalise=_reason_name)
    else:
        reason, reason_names = np.zeros(n, dtype=np.int64), ("",)
    groups = {}
    for field_name, normalise in (("Account", str.strip), ("Partition", _first_partition)):
        if field_name in names:
            groups[field_name] = _compact(*_codes(*_distinct(table[field_name]),
                                                  normalise=normalise))
        else:   # a saved file without the field: not known
            groups[field_name] = (np.zeros(n, dtype=np.int64), ("",))
    (account, accounts), (partition, partitions) = (
        _compact(codes[keep], table_names) for codes, table_names in groups.values())
    user, users = _compact(user[keep], users)
    qos, qos_names = _compact(qos[keep], qos_names)
    state, states = _compact(state[keep], states)
    reason, reason_names = _compact(reason[keep], reason_names)
    seen_bits = np.array([float(reason_bits(r)) for r in reason_names] or [0.0])[reason]
    end = _ended(start[keep], end[keep], elapsed[keep], state, states)
    jobs = JobTable(
        job_id=job_id[keep].astype(np.int64), user=user, qos=qos, state=state,
        submit=submit[keep], start=start[keep], end=end, elapsed=elapsed[keep],
        nnodes=nnodes[keep], cpus=cpus[keep], gpus=gpus[keep], mem_gib=mem_mib[keep] / 1024.0,
        eligible=eligible[keep], timelimit=timelimit[keep], req_cpus=req_cpus[keep],
        req_gpus=req_gpus[keep], req_mem_gib=req_mem_gib[keep], tasks=tasks[keep],
        # Only a wait is a reason's to tell: a job that started waits no more.
        reasons_seen=np.where(np.isnan(start[keep]), seen_bits, 0.0), reason=reason,
        users=users, qos_names=qos_names, states=states, reasons=reason_names,
        **{c: v[keep] for c, v in usage.items()}, usage_read=np.full(len(user), np.nan),
        account=account, partition=partition, accounts=accounts, partitions=partitions,
    )
    return ParseResult(
        jobs=jobs, data_lines=n + n_steps + malformed, step_lines=n_steps,
        bad_lines=int(bad.sum()) + malformed,
        bad_line_numbers=tuple(int(x) for x in bad_numbers[bad_numbers > 0][:MAX_LINE_NUMBERS]),
        bad_reasons={k: v for k, v in counts.items() if v}, bad_fields=bad_usage,
    )


def _step_usage(table: pa.Table, is_step: np.ndarray) -> StepUsage:
    """What the step lines recorded, one row per allocation line (the key: its
    index among them). sacct prints each record's steps after its allocation
    line, so a step belongs to the allocation line before it: a requeued job's
    runs (one JobIDRaw) keep their own steps."""
    owner = np.cumsum(~is_step) - 1
    rows = np.flatnonzero(is_step & (owner >= 0))
    wanted = [c for c in ("ElapsedRaw", *USAGE_FIELDS) if c in table.column_names]
    steps = table.select(wanted).take(from_numpy(rows.astype(np.int64), pa.int64()))
    names = steps.column_names

    def field(name: str) -> pa.ChunkedArray | None:
        return steps[name] if name in names else None

    return fold_steps(owner[rows], _integers(steps["ElapsedRaw"]),
                      steps["MaxRSS"], field("TRESUsageInMax"), field("TRESUsageInAve"),
                      field("TotalCPU"))


def _usage(table: pa.Table, n: int, steps: StepUsage | None
           ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Per allocation row of `table` (n of them), what the job used (NaN: not
    recorded), and the unreadable values skipped, by field: TotalCPU from the
    allocation line (its steps' sum where it has none), the rest from its steps."""
    out = {c: np.full(n, np.nan) for c in USAGE_COLUMNS}
    bad: dict[str, int] = dict(steps.bad) if steps is not None else {}
    if "TotalCPU" in table.column_names:
        cpu, unreadable = cpu_seconds(table["TotalCPU"])
        out["total_cpu"] = cpu
        if unreadable.any():
            bad["TotalCPU"] = bad.get("TotalCPU", 0) + int(unreadable.sum())
    if steps is not None and len(steps.key):
        at = steps.key
        for column, values in (("peak_rss_gib", steps.peak_rss_gib),
                               ("gpu_util", steps.gpu_util), ("gpu_mem_gib", steps.gpu_mem_gib)):
            out[column][at] = values
        from_steps = np.full(n, np.nan)
        from_steps[at] = steps.total_cpu
        out["total_cpu"] = np.where(np.isnan(out["total_cpu"]), from_steps, out["total_cpu"])
    return out, bad


@dataclass(frozen=True)
class UsageAnswer:
    """The usage query's answer (sacct.build_usage_args): per record asked and
    answered (JobIDRaw, Submit), what it used (NaN: not recorded), and the
    values skipped."""

    job_id: np.ndarray
    submit: np.ndarray
    usage: dict[str, np.ndarray]       # USAGE_COLUMNS -> per record
    lines: int = 0
    bad_lines: int = 0
    bad_fields: dict[str, int] = field(default_factory=dict)


def merge_usage(answers: Sequence[UsageAnswer]) -> UsageAnswer:
    """Several answers' records as one (the queries of disjoint sets of QoS)."""
    if len(answers) == 1:
        return answers[0]
    bad: dict[str, int] = {}
    for a in answers:
        for k, n in a.bad_fields.items():
            bad[k] = bad.get(k, 0) + n
    return UsageAnswer(
        job_id=np.concatenate([a.job_id for a in answers]),
        submit=np.concatenate([a.submit for a in answers]),
        usage={k: np.concatenate([a.usage[k] for a in answers]) for k in answers[0].usage},
        lines=sum(a.lines for a in answers), bad_lines=sum(a.bad_lines for a in answers),
        bad_fields=bad)


def parse_usage(data: bytes, tz: str = "UTC") -> UsageAnswer:
    """The allocation and step lines of some jobs -> one row per record."""
    malformed = 0

    def on_invalid(row: pcsv.InvalidRow) -> str:
        nonlocal malformed
        malformed += bool(row.text.strip())
        return "skip"

    text = data if data.strip() else "|".join(USAGE_QUERY_FIELDS).encode() + b"\n"
    try:
        table = pcsv.read_csv(
            pa.py_buffer(text),
            parse_options=pcsv.ParseOptions(delimiter="|", quote_char=False, escape_char=False,
                                             invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(USAGE_QUERY_FIELDS, pa.string()),
                strings_can_be_null=False))
    except pa.ArrowInvalid as err:
        raise SacctFormatError(f"unreadable usage answer: {err}") from err
    missing = [f for f in ("JobIDRaw", "JobID", "Submit", "ElapsedRaw")
               if f not in table.column_names]
    if missing:
        raise SacctFormatError(f"the usage answer lacks the field(s) {', '.join(missing)}")
    is_step = to_numpy(pc.match_substring(table["JobID"], "."))
    steps = _step_usage(table, is_step) if is_step.any() and "MaxRSS" in table.column_names \
        else None
    allocations = table.filter(from_bools(~is_step))
    ids = _integers(allocations["JobIDRaw"])
    submit, bad_submit = _times(allocations["Submit"], tz)
    usage, bad = _usage(allocations, len(ids), steps)
    known = ~np.isnan(ids) & ~bad_submit
    return UsageAnswer(job_id=ids[known].astype(np.int64), submit=submit[known],
                       usage={k: v[known] for k, v in usage.items()},
                       lines=table.num_rows + malformed, bad_lines=malformed + int((~known).sum()),
                       bad_fields=bad)


__all__ = ["JobTable", "ParseResult", "SacctFormatError", "UsageAnswer", "local_to_utc",
           "parse_sacct", "parse_usage"]
