"""The collection cycle: sacct (or a saved file) -> job store -> bins -> snapshots.

This is the I/O shell around the pure modules, read top-down in `collect`:
take the data folder's lock; bring the job store up to date (`sync_store`:
a full backfill in day-sized queries the first time, or after a gap, a
configuration change, a damaged store or --full; else one query for the jobs
active since the last cycle less a safety overlap, plus a query by id for
jobs that were open at the last cycle and fell outside it), or read a saved
file; read the queue (one squeue call per cluster: the reasons now, kept in
the store too) and the limits; then per (cluster, QoS) panel: bin, weigh
the limit pressure and the waits from the exact job intervals, write the
snapshot, draw the plots; last, record the cycle in the status file.

A failing or hanging squeue never stops the cycle: the snapshot says the
queue is unknown since its last good read, and the status file records it.

Nothing is written until every query has been answered and parsed, so a
failed sacct, a time-out or unreadable output leaves the store and every
previous snapshot exactly as they were. The store is written before the
snapshots, so the snapshots never run ahead of it.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from collector import __version__
from collector.binning import (
    Binned,
    DayGrid,
    Usage,
    Window,
    bin_seconds,
    fold,
    make_window,
    usage_of,
)
from collector.checked import Entry, read_index, write_index
from collector.config import Config, Panel
from collector.efficiency import EfficiencyDays, add_efficiency_days, efficiency_days
from collector.history import History, add_histories, fold_history, history_grid, history_of
from collector.jobtable import GROUPINGS, USAGE_COLUMNS, JobTable, concat
from collector.limits import LimitsReport, configured_limits, current_limits
from collector.lock import DataLock
from collector.observables import CHART_KEYS, LIMITED
from collector.overview import OverviewRow, overview_row, read_overview, write_overview
from collector.palette import assign_colors
from collector.parse import (
    ParseResult,
    SacctFormatError,
    UsageAnswer,
    merge_usage,
    parse_sacct,
    parse_usage,
)
from collector.pressure import (
    Analysis,
    Span,
    analyse,
    at_limit_now,
    finish,
    frozen_digest,
    local_days,
    rebased,
    same_limits,
    settle,
    span_of,
    with_waits_at_limit,
)
from collector.sacct import build_sacct_args, build_usage_args, qos_chunks
from collector.slurm import SLURM_TIME_ZONE, Runner, SlurmError, run_slurm, slurm_tool
from collector.snapshot import (
    Grouping,
    QueueState,
    Snapshot,
    snapshot_path,
    write_snapshot,
)
from collector.squeue import Queue, build_squeue_args, parse_squeue, queue_rows, seen_reasons
from collector.status import read_status, record_step, record_sync, write_status
from collector.store import (
    DAY,
    Cycle,
    JobStore,
    Seen,
    StoreCorrupt,
    Synced,
    SyncPlan,
    SyncReport,
    fingerprint,
)
from collector.store.days import segment_histories
from collector.store.frozen import (
    Frozen,
    FrozenFile,
    load_frozen,
    load_frozen_efficiency,
    save_frozen,
    save_frozen_efficiency,
)
from collector.store.records import keys_of, needs_usage, record_keys, with_usage
from collector.store.staging import QuerySpan, Staging, discard

log = logging.getLogger("librarian.collect")

# Open jobs asked for by id go in batches of this many ids per sacct call.
IDS_PER_QUERY = 500
# More jobs to read than this (a backfill): their steps are asked per time span.
USAGE_IDS_BY_ID = 5000


class CollectError(Exception):
    """The input could not be had or read; nothing was written."""


@dataclass(frozen=True)
class QosOutcome:
    qos: str
    snapshot: Path
    users: int
    jobs_counted: int
    plots: tuple[Path, ...] = ()       # the charts drawn this cycle
    user_names: tuple[str, ...] = ()   # (the plots' colours agree across QoS)
    changed: bool = True               # its snapshot was written (its content changed)
    entry: Entry | None = None         # its line in checked.json
    overview: OverviewRow | None = None  # its line in overview.json


@dataclass(frozen=True)
class CollectReport:
    window: Window
    parse: ParseResult
    outcomes: tuple[QosOutcome, ...] = field(default_factory=tuple)
    sync: SyncReport | None = None
    limits: LimitsReport | None = None
    queue: QueueRead | None = None


@dataclass(frozen=True)
class QueueRead:
    """What squeue said this cycle, per cluster, or why it could not say."""

    at: int
    queues: dict[str, Queue]
    errors: dict[str, str] = field(default_factory=dict)   # cluster -> why it is unknown
    seconds: float = 0.0

    @property
    def error(self) -> str:
        return "; ".join(f"{c}: {e}" if c else e for c, e in self.errors.items())

    def of(self, cluster: str, qos: str) -> Queue:
        queue = self.queues.get(cluster, Queue())
        return Queue(queue.of(qos), queue.lines, queue.bad_lines, queue.bad_line_numbers)


def collect(config: Config, now: float, qos_names: Sequence[str] | None = None,
            sacct_file: Path | None = None, plots: bool = True,
            runner: Runner = subprocess.run,
            environ: Mapping[str, str] | None = None, full: bool = False,
            squeue_file: Path | None = None) -> CollectReport:
    """Collect every requested QoS at time `now` (epoch seconds) and write its files.

    Live collection keeps the job store of every configured QoS up to date
    (one sacct query covers them all), whichever QoS are written. With a
    saved `sacct_file`, a saved `squeue_file` (what squeue printed, in
    collector/squeue.py's format) may stand for the queue."""
    selected = {q.name for q in config.qos_named(list(qos_names) if qos_names else None)}
    panels = [p for p in config.panels if p.qos in selected]
    window = make_window(now, config.collect.bin_seconds, config.collect.n_bins)
    data_dir = config.site.data_dir
    with DataLock(data_dir):
        index = read_index(data_dir)
        queue: QueueRead | None = None
        if sacct_file is not None:
            parsed = _read_file(config, sacct_file)
            limits, sync = configured_limits(config), None
            source = f"file:{sacct_file}"
            if squeue_file is not None:
                queue = _queue_of_file(squeue_file, window.now)
        else:
            queue = read_queue(config, window.now, runner, environ)
            synced, sync, parsed = sync_store(config, window, runner, environ, full,
                                              seen=_seen(queue))
            limits = current_limits(config, window, runner, environ)
            source = "sacct"
        last_read = _last_queue_read(data_dir) if queue is not None and queue.errors else None

        def make(part: _Parts) -> QosOutcome:
            """One QoS's snapshot, from its sums per (user, account, partition)
            folded to each grouping."""
            p = part.panel
            usage = usage_of(fold(part.binned, "user"), window)
            groups = {by: _grouping(part.binned, part.history, by, window)
                      for by in GROUPINGS[1:]}
            return _write_panel(config, p, usage, part.records, part.analysis, parsed,
                                source, limits, _queue_state(queue, p, last_read), part.efficiency,
                                fold_history(part.history, "user"), groups, index)

        # One QoS at a time, written as soon as it is made: the arrays of one
        # QoS are alive at once, never those of every QoS (memory at 500 QoS).
        if sacct_file is not None:
            days = local_days(window.start, window.now, config.site.timezone)
            history = history_grid(window.now, config.collect.history_days, config.site.timezone)
            done = {part.panel: make(part) for part in
                    _bin_and_analyse(parsed.jobs, panels, window, limits, days, history)}
        else:
            assert sync is not None
            done = _live_outcomes(synced, panels, window, limits, config, sync.history_from, make)
        outcomes = [done[p] for p in panels]
        if plots:
            outcomes = _write_plots(config, panels, outcomes)
        write_index(data_dir, {**index, **{o.snapshot.name: o.entry for o in outcomes
                                           if o.entry is not None}})
        _write_overview(config, outcomes)
        if sync is not None:
            _record(data_dir, window.now, sync, limits, queue)
    return CollectReport(window=window, parse=parsed, outcomes=tuple(outcomes), sync=sync,
                         limits=limits, queue=queue)


@dataclass(frozen=True)
class _Parts:
    """What one QoS's snapshot is made of, before folding to the groupings."""
    panel: Panel
    binned: Binned            # per (user, account, partition)
    records: JobTable         # its running and pending jobs (hot), or all from a file
    analysis: Analysis
    efficiency: EfficiencyDays
    history: History          # per (user, account, partition)


# What the charts look like beyond the snapshot's content, colours and
# formats: raise it when collector/plots.py draws differently.
PLOT_STYLE = 1


def plots_key(o: QosOutcome, colors: Mapping[str, str], formats: Sequence[str]) -> str:
    """What one QoS's charts are drawn from: its content, its users' colours,
    the formats and PLOT_STYLE. The same key: the charts on disk are current."""
    assert o.entry is not None
    text = repr((PLOT_STYLE, o.entry.digest, tuple(formats),
                 tuple((u, colors[u]) for u in o.user_names)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _write_plots(config: Config, panels: Sequence[Panel], outcomes: list[QosOutcome]
                 ) -> list[QosOutcome]:
    """The charts of each QoS whose content or colours changed since they
    were drawn (or whose files are gone), with one colour per user across
    this run's QoS so the charts of all QoS agree: on `plots.processes`
    processes, the ones drawn longest ago first, for `plots.budget_seconds`
    (the rest are drawn first in the next cycle)."""
    from collector.plots import PlotJob, draw_many, plot_name  # matplotlib is slow to import

    pc = config.plots
    if not pc.formats:
        return outcomes
    colors = assign_colors(u for o in outcomes for u in o.user_names)
    keys = {o.snapshot: plots_key(o, colors, pc.formats) for o in outcomes}

    def current(p: Panel, o: QosOutcome) -> bool:
        assert o.entry is not None
        return o.entry.plots == keys[o.snapshot] and all(
            (config.site.data_dir / plot_name(obs, p.qos, p.file_cluster, f)).exists()
            for obs in CHART_KEYS for f in pc.formats)

    stale = sorted(((p, o) for p, o in zip(panels, outcomes, strict=True) if not current(p, o)),
                   key=lambda po: po[1].entry.plotted if po[1].entry else 0)
    jobs = [PlotJob(o.snapshot, p.file_cluster, {u: colors[u] for u in o.user_names})
            for p, o in stale]
    drawn = draw_many(jobs, pc.formats, pc.processes, pc.budget_seconds)
    if len(drawn) < len(jobs):
        log.warning("plots: %d of %d QoS drawn within plots.budget_seconds (%g s); "
                    "the other %d are drawn first next cycle", len(drawn), len(jobs),
                    pc.budget_seconds, len(jobs) - len(drawn))
    out = []
    for o in outcomes:
        if o.snapshot in drawn:
            assert o.entry is not None
            entry = replace(o.entry, plots=keys[o.snapshot], plotted=o.entry.checked)
            o = replace(o, plots=tuple(drawn[o.snapshot]), entry=entry)
        out.append(o)
    return out


# More QoS than this: their files are made on `collect.processes` processes.
POOL_FROM = 8


def _live_outcomes(synced: Synced, panels: Sequence[Panel], window: Window,
                   limits: LimitsReport, config: Config, history_from: int,
                   make: Callable[[_Parts], QosOutcome]) -> dict[Panel, QosOutcome]:
    """Each panel's files from the job store. The pressure, the efficiency
    and the cold segments' daily history of all panels first, in this
    process (their caches are written here, once); then the rest of each
    QoS (its binning, daily history, folds and snapshot): with more than
    POOL_FROM QoS on `collect.processes` forked processes, which start with
    the store in memory and each write their own QoS's files, a few QoS at
    a time, while this process gathers what they say of them."""
    analyses = _live_analyses(synced, panels, window, limits, config.site.timezone)
    efficiency = _live_efficiency(synced, panels, window, config.site.timezone)
    first, grid = history_grid(window.now, config.collect.history_days, config.site.timezone)
    cold = segment_histories(synced.folder, synced.raw, first, config.site.timezone) \
        if synced.folder is not None else {}

    def outcomes(chunk: Sequence[Panel]) -> list[QosOutcome]:
        out = []
        for p in chunk:
            hot = synced.hot_jobs(p.cluster, p.qos)
            history = add_histories([*cold.get((p.cluster, p.qos), []),
                                     history_of(hot.combined(), first, grid)],
                                    first, config.collect.history_days)
            out.append(make(_Parts(p, synced.binned(p.cluster, p.qos, window), hot,
                                   analyses[p](), efficiency[p](),
                                   replace(history, complete_from=history_from))))
        return out

    processes = config.collect.processes
    if processes <= 1 or len(panels) <= POOL_FROM:
        return dict(zip(panels, outcomes(panels), strict=True))
    chunks = [panels[i:i + _CHUNK] for i in range(0, len(panels), _CHUNK)]
    return dict(zip(panels, (o for c in _forked(outcomes, chunks, processes) for o in c),
                    strict=True))


# QoS a forked process makes before it says what it made (their outcomes are
# small): few enough that the processes finish close together.
_CHUNK = 8
# The work of the forked processes of `_forked`, inherited (never pickled).
_WORK: Callable[[Any], Any] | None = None


def _run_forked(item: Any) -> Any:
    assert _WORK is not None, "run in a process forked by _forked"
    return _WORK(item)


def _forked(work: Callable[[Any], Any], items: Sequence[Any], processes: int) -> list[Any]:
    """work(item) for each item, in order, on `processes` forked processes:
    each starts with this process's memory (the job store), shared until
    written; only the items' indices and the results are sent between them."""
    global _WORK
    _WORK = work
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork")) as pool:
            return list(pool.map(_run_forked, items))
    except BrokenProcessPool as err:
        raise CollectError(f"a process making the snapshots stopped ({err}); the snapshots "
                           "not written keep their last content") from err
    finally:
        _WORK = None


# QoS whose work is under way at once in _bin_and_analyse: enough to keep two
# threads busy, few enough that only their arrays are alive.
_AHEAD = 4


def _bin_and_analyse(jobs: JobTable, panels: Sequence[Panel], window: Window,
                     limits: LimitsReport, days: np.ndarray, history: tuple[date, DayGrid]
                     ) -> Iterator[_Parts]:
    """Each panel's jobs, binning, pressure and efficiency sums from a whole
    history, on two cores. The pieces share nothing and numpy releases the
    GIL in nearly all of them, so they are tasks of one two-thread pool,
    given out largest first (each QoS's binning, its pressure in two spans
    cut at the middle bin boundary, which add up in `finish`, its efficiency
    sums and its daily history), a few QoS ahead of the one being written,
    which keeps both cores busy to the end."""
    middle = window.start + (window.n_bins // 2) * window.bin_seconds
    rows = jobs.qos_rows()
    names = sorted({p.qos for p in panels}, key=lambda q: -len(rows.get(q, ())))
    with ThreadPoolExecutor(max_workers=2) as pool:
        def start(q: str) -> tuple[JobTable, tuple[Future[Any], ...]]:
            mine = jobs.take(rows[q]) if q in rows else JobTable.empty()
            steps = _steps(limits, next(p for p in panels if p.qos == q), window)
            combined = mine.combined()   # once (O(rows)): the binning and the days share it
            return mine, (pool.submit(bin_seconds, combined, window),
                          pool.submit(span_of, mine, window, steps, window.start, middle),
                          pool.submit(span_of, mine, window, steps, middle, window.now),
                          pool.submit(efficiency_days, mine, days, window.now, window.start),
                          pool.submit(history_of, combined, *history))

        started = {q: start(q) for q in names[:_AHEAD]}
        for i, q in enumerate(names):
            if i + _AHEAD < len(names):
                started[names[i + _AHEAD]] = start(names[i + _AHEAD])
            mine, (binned, early, late, sums, days_of) = started.pop(q)
            analysis = finish([early.result(), late.result()], window)
            for p in (p for p in panels if p.qos == q):
                yield _Parts(p, binned.result(), mine, analysis, sums.result(), days_of.result())
            del mine, binned, early, late, sums, days_of


def _grouping(binned: Binned, history: History, by: str, window: Window) -> Grouping:
    """One QoS's series, values now and daily history per account or partition."""
    usage = usage_of(fold(binned, by), window)
    return Grouping(usage.users, usage.series, usage.current, fold_history(history, by))


def _read_file(config: Config, sacct_file: Path) -> ParseResult:
    try:
        data = _mapped(sacct_file)
    except OSError as err:
        raise CollectError(f"cannot read {sacct_file}: {err.strerror}") from err
    try:
        parsed = parse_sacct(data, config.site.timezone)
    except SacctFormatError as err:
        raise CollectError(f"{sacct_file}: {err}") from err
    if parsed.bad_lines or parsed.bad_fields:
        log.warning("%s: %s", sacct_file, parsed.bad_summary())
    return parsed


def _mapped(path: Path) -> bytes | mmap.mmap:
    """A saved file's bytes, mapped into memory rather than copied (a 1M-line
    history is a quarter of a gigabyte); an empty file, or one that cannot be
    mapped (a pipe), is read."""
    with path.open("rb") as fh:
        try:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):   # empty, or not a regular file
            return fh.read()


def _record(data_dir: Path, now: int, sync: SyncReport, limits: LimitsReport,
            queue: QueueRead | None) -> None:
    """The cycle's sacct work, and whether sacctmgr's limits and squeue's queue
    could be read, in the status file (the page shows a failed read like a
    failed step)."""
    status = record_sync(read_status(data_dir), now, sync)
    if limits.asked_slurm:
        status = record_step(status, "limits", not limits.warning, now, 0.0,
                             limits.warning or None, "read from sacctmgr")
    if queue is not None:
        jobs = sum(len(q.jobs) for q in queue.queues.values())
        status = record_step(status, "queue", not queue.error, now, queue.seconds,
                             queue.error or None, f"{jobs} pending job(s) read from squeue")
    write_status(data_dir, status)


# --- the queue ---------------------------------------------------------------------


def read_queue(config: Config, now: int, runner: Runner = subprocess.run,
               environ: Mapping[str, str] | None = None) -> QueueRead:
    """The pending jobs of every configured QoS, one squeue call per cluster
    (per run of `collect.qos_per_query` QoS: their lines read as one answer).
    Never raises: a failure, a time-out or unreadable output is the answer's
    `error`, and unreadable lines are counted and skipped."""
    chunks = qos_chunks([q.name for q in config.qos], config.collect.qos_per_query)
    squeue = slurm_tool(config.site.slurm_bin, "squeue")
    queues: dict[str, Queue] = {}
    errors: dict[str, str] = {}
    t = time.perf_counter()
    for cluster in config.clusters:
        try:
            data = b"".join(_lines(run_slurm(build_squeue_args(squeue, qos, cluster),
                                             config.ops.command_timeout_seconds, runner=runner,
                                             environ=environ,
                                             timeout_key="ops.command_timeout_seconds"))
                            for qos in chunks)
        except SlurmError as err:   # this cluster's queue is unknown; the others' are not
            log.warning("queue unknown%s: %s", f" on {cluster}" if cluster else "", err)
            errors[cluster] = str(err)
            continue
        queue = parse_squeue(data)
        if queue.bad_lines:
            log.warning("squeue%s: skipped %d unreadable line(s) (line %s)",
                        f" -M {cluster}" if cluster else "", queue.bad_lines,
                        ", ".join(map(str, queue.bad_line_numbers)))
        queues[cluster] = queue
    return QueueRead(now, queues, errors, time.perf_counter() - t)


def _lines(data: bytes) -> bytes:
    """Output that ends its last line (so answers put together stay lines)."""
    return data if not data or data.endswith(b"\n") else data + b"\n"


def _queue_of_file(path: Path, now: int) -> QueueRead:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CollectError(f"cannot read {path}: {err.strerror}") from err
    queue = parse_squeue(data)
    if queue.bad_lines:
        log.warning("%s: skipped %d unreadable line(s) (line %s)", path, queue.bad_lines,
                    ", ".join(map(str, queue.bad_line_numbers)))
    return QueueRead(now, {"": queue})


def _seen(queue: QueueRead) -> dict[str, Seen]:
    return {cl: Seen(*seen_reasons(q.jobs)) for cl, q in queue.queues.items()}


def _last_queue_read(data_dir: Path) -> int | None:
    last = read_status(data_dir).get("steps", {}).get("queue", {}).get("last_success")
    return int(last) if isinstance(last, (int, float)) else None


def _queue_state(queue: QueueRead | None, panel: Panel, last_read: int | None
                 ) -> QueueState | None:
    if queue is None:
        return None
    if panel.cluster in queue.errors:
        return QueueState(read_at=last_read, error=queue.errors[panel.cluster])
    mine = queue.of(panel.cluster, panel.qos)
    return QueueState(read_at=queue.at, rows=tuple(queue_rows(mine.jobs, queue.at)),
                      skipped_lines=mine.bad_lines)


# --- the job store ---------------------------------------------------------------


class _Asker:
    """Runs sacct queries and keeps count of what was asked of slurmdbd."""

    def __init__(self, config: Config, runner: Runner, environ: Mapping[str, str] | None
                 ) -> None:
        self.config, self.runner, self.environ = config, runner, environ
        self.qos = qos_chunks([q.name for q in config.qos], config.collect.qos_per_query)
        self.queries = 0
        self.rows = 0
        self.seconds = 0.0
        self.requeried = 0      # open jobs asked for by id
        self.usage_rows = 0     # allocation and step lines of the usage queries
        self.parses: list[ParseResult] = []
        self.staging: Staging | None = None   # a backfill's answers, kept as it goes

    def ask(self, cluster: str, start: int, end: int,
            job_ids: Sequence[int] | np.ndarray = ()) -> JobTable:
        """The jobs of every configured QoS active in [start, end]: one query
        per run of `collect.qos_per_query` QoS (usually one)."""
        return concat([self.ask_some(names, cluster, start, end, job_ids) for names in self.qos])

    def ask_some(self, qos: list[str], cluster: str, start: int, end: int,
                 job_ids: Sequence[int] | np.ndarray) -> JobTable:
        args = build_sacct_args(slurm_tool(self.config.site.slurm_bin, "sacct"), qos,
                                start, end, cluster=cluster, job_ids=job_ids)
        data = self.run(args)
        try:
            parsed = parse_sacct(data, SLURM_TIME_ZONE)
        except SacctFormatError as err:
            raise CollectError(f"unreadable sacct output: {err}; command: {' '.join(args)}") from err
        if parsed.bad_lines or parsed.bad_fields:
            log.warning("sacct %s..%s%s: %s", start, end, f" -M {cluster}" if cluster else "",
                        parsed.bad_summary())
        self.rows += parsed.data_lines
        # The counts only: the jobs go on in the answer, and a backfill's
        # would otherwise stay alive beside the store's merge (500 QoS: ~0.3 GB).
        self.parses.append(replace(parsed, jobs=JobTable.empty()))
        return parsed.jobs

    def answers(self, store: JobStore, cycle: Cycle, plan: SyncPlan) -> dict[str, JobTable]:
        """Each cluster's answers: the time queries, then by id the jobs that
        were open when last read and that the time queries did not return
        (open at the last cycle; for a resumed backfill, open when their day
        was kept); later answers win."""
        resumable = plan.full and self.config.collect.incremental   # not refilled each cycle
        self.staging = Staging.open(store.folder, cycle.fingerprint,
                                    settled=cycle.now - cycle.overlap_seconds) \
            if resumable else None
        out = {}
        for cluster in cycle.clusters:
            asked, kept = self.spans(cluster, cycle, plan)
            new = concat([*kept, *asked])
            was_open = store.open_ids(cluster, plan) if not plan.full else \
                np.unique(np.concatenate([np.zeros(0, np.int64),
                                          *(t.job_id[np.isnan(t.end)] for t in kept)]))
            missing = np.setdiff1d(was_open, concat(asked).job_id)
            self.requeried += len(missing)
            extra = [self.ask(cluster, cycle.keep_from, cycle.now, missing[i:i + IDS_PER_QUERY])
                     for i in range(0, len(missing), IDS_PER_QUERY)]
            # A backfill keeps nothing of the old store: every ended record is read anew.
            stored = JobTable.empty() if plan.full else store.hot.get(cluster, JobTable.empty())
            out[cluster] = self.read_usage(cluster, concat([new, *extra]), stored, cycle, plan)
        return out

    def spans(self, cluster: str, cycle: Cycle, plan: SyncPlan
              ) -> tuple[list[JobTable], list[JobTable]]:
        """The time queries, in order, and the days an interrupted backfill
        already read (`self.staging`). A backfill's days older than the window wait
        `backfill_pause_seconds` apart, so a year of history asks slurmdbd
        gently; each day is kept as soon as it is read; the progress is in
        the log and the status file."""
        pause = self.config.collect.backfill_pause_seconds
        older = cycle.now - self.config.collect.window_days * DAY
        staging = self.staging
        asked, kept = [], []
        paced = False
        first_older = len(plan.spans) - plan.older
        for i, (s, e) in enumerate(plan.spans):
            span = QuerySpan(cluster, s, e)
            staged = staging.jobs(span) if staging is not None else None
            if staged is not None:
                kept.append(staged)
            else:
                if pause and paced and (e <= older or (plan.older and i >= first_older)):
                    time.sleep(pause)
                jobs = self.ask(cluster, s, e)
                paced = True
                asked.append(jobs)
                if staging is not None:
                    staging.keep_jobs(span, jobs)
            if plan.full and len(plan.spans) > 1:
                done = f"{i + 1} of {len(plan.spans)} day queries"
                if kept:
                    done += f" ({len(kept)} kept from an interrupted backfill)"
                self.progress(cluster, "backfill", done, e)
            elif plan.older and i >= first_older:
                left = (plan.history_from - plan.keep_from) / DAY
                done = (f"history read back to {time.strftime('%Y-%m-%d', time.gmtime(s))} UTC; "
                        + (f"{left:.0f} older day(s) in the next cycles" if left > 0.5
                           else "complete"))
                self.progress(cluster, "history", done, e)
        return asked, kept

    def progress(self, cluster: str, step: str, done: str, end: int) -> None:
        """A backfill's or history's progress, in the log and the status file."""
        log.info("%s%s: %s (to %s UTC)", step, f" {cluster}" if cluster else "", done,
                 time.strftime("%Y-%m-%d", time.gmtime(end)))
        data_dir = self.config.site.data_dir
        write_status(data_dir, record_step(read_status(data_dir), step, True, time.time(), 0.0,
                                           None, done))

    def read_usage(self, cluster: str, fresh: JobTable, stored: JobTable, cycle: Cycle,
                   plan: SyncPlan) -> JobTable:
        """The answers with what the jobs that ended since they were last read
        used, from their steps: asked by id, once per job; a backfill (too
        many ids) asks the steps of its time spans instead (kept as it goes,
        like its allocations), then by id any ended job no span answered."""
        rows = needs_usage(fresh, stored)
        ids = np.unique(fresh.job_id[rows])
        if not len(ids):
            return fresh
        sacct = slurm_tool(self.config.site.slurm_bin, "sacct")
        if len(ids) > USAGE_IDS_BY_ID:
            ended = record_keys(fresh)[rows]
            answers = [self.span_usage(QuerySpan(cluster, s, e), ended) for s, e in plan.spans]
            covered = keys_of(np.concatenate([a.job_id for a in answers]),
                              np.concatenate([a.submit for a in answers]))
            left = np.unique(fresh.job_id[rows][~np.isin(ended, covered)])
            answers += [self.usage(build_usage_args(sacct, left[i:i + IDS_PER_QUERY], cluster))
                        for i in range(0, len(left), IDS_PER_QUERY)]
        else:
            answers = [self.usage(build_usage_args(sacct, ids[i:i + IDS_PER_QUERY], cluster))
                       for i in range(0, len(ids), IDS_PER_QUERY)]
        keys = keys_of(np.concatenate([a.job_id for a in answers]),
                       np.concatenate([a.submit for a in answers]))
        order = np.argsort(keys, kind="stable")
        usage = {c: np.concatenate([a.usage[c] for a in answers])[order] for c in USAGE_COLUMNS}
        return with_usage(fresh, rows, keys[order], usage, cycle.now)

    def span_usage(self, span: QuerySpan, ended: np.ndarray) -> UsageAnswer:
        """The steps of one backfill span: kept from an interrupted backfill,
        or asked (and kept, for the records that had ended)."""
        staging = self.staging
        staged = staging.usage(span) if staging is not None else None
        if staged is not None:
            return staged
        sacct = slurm_tool(self.config.site.slurm_bin, "sacct")
        answer = merge_usage([self.usage(build_usage_args(sacct, cluster=span.cluster,
                                                          qos_names=names, start=span.start,
                                                          end=span.end))
                              for names in self.qos])
        if staging is not None:
            staging.keep_usage(span, answer, ended)
        return answer

    def run(self, args: list[str]) -> bytes:
        """One sacct call, timed and counted; CollectError if it fails."""
        log.debug("running %s", " ".join(args))
        t = time.perf_counter()
        try:
            return run_slurm(args, self.config.collect.sacct_timeout_seconds,
                             runner=self.runner, environ=self.environ, needs_output=True)
        except SlurmError as err:
            raise CollectError(str(err)) from err
        finally:
            self.seconds += time.perf_counter() - t
            self.queries += 1

    def usage(self, args: list[str]) -> UsageAnswer:
        data = self.run(args)
        try:
            answer = parse_usage(data, SLURM_TIME_ZONE)
        except SacctFormatError as err:
            raise CollectError(f"{err}; command: {' '.join(args)}") from err
        if answer.bad_lines or answer.bad_fields:
            log.warning("sacct (steps of %d jobs): %d unreadable line(s); read as not recorded: %s",
                        len(answer.job_id), answer.bad_lines,
                        ", ".join(f"{n} {k}" for k, n in sorted(answer.bad_fields.items())) or "-")
        self.usage_rows += answer.lines
        return answer


def sync_store(config: Config, window: Window, runner: Runner = subprocess.run,
               environ: Mapping[str, str] | None = None, full: bool = False,
               seen: dict[str, Seen] | None = None) -> tuple[Synced, SyncReport, ParseResult]:
    """Bring the job store up to `window.now` and write it; raise CollectError
    (nothing written) if any query fails."""
    c = config.collect
    cycle = Cycle(now=window.now,
                  fingerprint=fingerprint(config.site.clusters, [q.name for q in config.qos]),
                  keep_from=window.start - (c.history_days - c.window_days) * DAY,
                  overlap_seconds=c.overlap_minutes * 60, chunk_seconds=c.chunk_hours * 3600,
                  clusters=config.clusters, window_from=window.start,
                  history_days_per_cycle=c.history_days_per_cycle)
    store = JobStore.open(config.site.data_dir, window.bin_seconds)
    if store.damaged:
        log.error("job store damaged (%s): set aside as %s; rebuilding it from a full query",
                  store.damaged, store.set_aside_as)
    plan = store.plan(cycle, force_full=full or not c.incremental)
    log.info("job store: %s, %d quer%s from %s", "full backfill (" + plan.reason + ")"
             if plan.full else "incremental", len(plan.spans),
             "y" if len(plan.spans) == 1 else "ies", plan.start)
    asker = _Asker(config, runner, environ)
    answers = asker.answers(store, cycle, plan)
    try:
        synced = store.advance(cycle, plan, answers, seen)
    except OSError as err:
        raise CollectError(f"cannot write the job store in {store.folder}: "
                           f"{err.strerror or err}") from err
    except StoreCorrupt as err:  # a segment went bad within this cycle: rebuild next time
        raise CollectError(f"the job store is damaged ({err}); run again (or with --full) "
                           "to rebuild it") from err
    if asker.staging is not None:
        asker.staging.clear()          # the backfill is in the store now
    else:
        discard(store.folder)          # an interrupted backfill that will not resume
    report = SyncReport(full=plan.full, reason=plan.reason, queries=asker.queries,
                        rows=asker.rows, usage_rows=asker.usage_rows,
                        sacct_seconds=round(asker.seconds, 3),
                        records=synced.records, requeried_open=asker.requeried,
                        set_aside=store.set_aside_as, spans=plan.spans,
                        cold_rewritten=synced.cold_rewritten, older=plan.older,
                        history_from=plan.history_from if plan.history_from > plan.keep_from
                        else 0)
    return synced, report, _combine(asker.parses)


def _combine(results: Sequence[ParseResult]) -> ParseResult:
    """The line counts of several queries' parses (the jobs are merged elsewhere)."""
    reasons: dict[str, int] = {}
    for r in results:
        for k, v in r.bad_reasons.items():
            reasons[k] = reasons.get(k, 0) + v
    numbers = next((r.bad_line_numbers for r in results if r.bad_line_numbers), ())
    return ParseResult(jobs=JobTable.empty(), data_lines=sum(r.data_lines for r in results),
                       step_lines=sum(r.step_lines for r in results),
                       bad_lines=sum(r.bad_lines for r in results),
                       bad_line_numbers=numbers, bad_reasons=reasons)


# --- one panel's files -------------------------------------------------------------


def _steps(limits: LimitsReport, panel: Panel, window: Window
           ) -> dict[str, tuple[tuple[int, float | None], ...]]:
    """Each limited observable's limit over the window, as steps."""
    thresholds = limits.limits[panel.qos].thresholds()
    steps = limits.steps.get(panel.qos, {})
    return {o.key: tuple(steps.get(o.key) or ((window.start, thresholds[o.key]),))
            for o in LIMITED}


# A kept span sums the waits no window of the next two days can cut (it is made
# anew when the boundary moves, once a day).
SETTLED_AFTER = 2 * 86400


# One panel's part of the work, made where it is called (in a forked
# process: _live_outcomes).
Later = Callable[[], Any]


def _ready(value: Any) -> Later:
    return lambda: value


def _joined(before: Span, rebase: bool, hot: JobTable, window: Window,
            steps: dict[str, tuple[tuple[int, float | None], ...]], boundary: int) -> Analysis:
    """The window's pressure and waits: the span before the frozen boundary
    (moved onto this window's bins if it was kept) and the hot records' after it."""
    return finish([rebased(before, window) if rebase else before,
                   span_of(hot, window, steps, boundary, window.now)], window)


def _live_analyses(synced: Synced, panels: Sequence[Panel], window: Window,
                   limits: LimitsReport, tz: str) -> dict[Panel, Later]:
    """Pressure and waits per panel, each made when called: the span before
    the frozen boundary kept from the last cycle where it still holds
    (collector/store/frozen.py), the span after it from the hot records; the
    cold records read (here, at once) only to make a kept span anew (once a
    day, when the boundary moves), and the kept spans' file written here."""
    boundary, b = synced.boundary, window.bin_seconds
    split = synced.folder is not None and window.start < boundary < window.now \
        and boundary % b == 0
    if not split:
        if boundary > window.start:   # every record: read once, here
            return {p: _ready(analyse(synced.jobs(p.cluster, p.qos), window,
                                    _steps(limits, p, window))) for p in panels}
        return {p: partial(analyse, synced.hot_jobs(p.cluster, p.qos), window,
                           _steps(limits, p, window)) for p in panels}
    assert synced.folder is not None
    kept = load_frozen(synced.folder, synced.cold.fingerprint, b)
    entries, changed = dict(kept.entries), False
    out: dict[Panel, Later] = {}
    for p in panels:
        steps = _steps(limits, p, window)
        hot = synced.hot_jobs(p.cluster, p.qos)
        digest = frozen_digest(hot, boundary, window.now)
        f = entries.get((p.cluster, p.qos))
        if (f is not None and f.span.end == boundary and f.span.start <= window.start
                < f.span.horizon and f.digest == digest
                and same_limits(f.steps, steps, window.start, boundary)):
            out[p] = partial(_joined, f.span, True, hot, window, steps, boundary)
            continue
        before = settle(with_waits_at_limit(
            span_of(synced.jobs(p.cluster, p.qos), window, steps, window.start, boundary)),
            window.start + SETTLED_AFTER, local_days(window.start, boundary, tz))
        entries[(p.cluster, p.qos)] = Frozen(before, digest, steps)
        changed = True
        out[p] = partial(_joined, before, False, hot, window, steps, boundary)
    if changed:
        try:
            save_frozen(synced.folder, FrozenFile(synced.cold.fingerprint, b, entries))
        except OSError as err:   # only a cache: the next cycle makes it again
            log.warning("cannot keep the limit pressure in %s: %s", synced.folder, err)
    return out


def _efficiency_of(hot: JobTable, days: np.ndarray, window: Window,
                   cold: EfficiencyDays | None) -> EfficiencyDays:
    mine = efficiency_days(hot, days, window.now, window.start)
    return mine if cold is None else add_efficiency_days(mine, cold, since=window.start)


def _live_efficiency(synced: Synced, panels: Sequence[Panel], window: Window, tz: str
                     ) -> dict[Panel, Later]:
    """What the jobs of each panel that ended in the window used, per user and
    local day, each made when called: the hot records' sums each cycle; the
    cold records' summed per bin of End (so any window start, a bin boundary,
    cuts them exactly) and kept from the cycle that made them
    (collector/store/frozen.py) while the segments and the boundary stay the
    same: the cold records are read (here) only to make them anew (about once
    a day)."""
    days = local_days(window.start, window.now, tz)
    if synced.folder is None or synced.boundary <= window.start:
        return {p: partial(_efficiency_of, synced.hot_jobs(p.cluster, p.qos), days, window, None)
                for p in panels}
    key = f"{synced.cold.fingerprint}|{synced.boundary}|{window.bin_seconds}"
    kept = load_frozen_efficiency(synced.folder, key) or {}
    # Made anew when the segments or the boundary moved, for the panels it
    # lacks too (a cycle of some QoS alone, `--qos`, made it for those only).
    missing = [p for p in panels if (p.cluster, p.qos) not in kept]
    if missing:
        b = window.bin_seconds
        edges = np.arange(window.start - window.n_bins * b, synced.boundary + b, b, dtype=float)
        # All records (read once a cycle, shared with the pressure), those that
        # ended before the boundary: the cold ones (times are whole seconds).
        kept = {**kept, **{(p.cluster, p.qos): efficiency_days(synced.jobs(p.cluster, p.qos),
                                                               edges, synced.boundary - 1)
                           for p in missing}}
        try:
            save_frozen_efficiency(synced.folder, key, kept)
        except OSError as err:   # only a cache: the next cycle makes it again
            log.warning("cannot keep the efficiency sums in %s: %s", synced.folder, err)
    return {p: partial(_efficiency_of, synced.hot_jobs(p.cluster, p.qos), days, window,
                       kept[(p.cluster, p.qos)]) for p in panels}


def _write_panel(config: Config, panel: Panel, usage: Usage, jobs: JobTable,
                 analysis: Analysis, parsed: ParseResult, source: str, limits: LimitsReport,
                 queue: QueueState | None, efficiency: EfficiencyDays,
                 history: History | None, groups: dict[str, Grouping],
                 index: Mapping[str, Entry]) -> QosOutcome:
    window = usage.window
    thresholds = limits.limits[panel.qos].thresholds()
    steps = limits.steps.get(panel.qos, {})
    snap = Snapshot(
        qos=panel.qos, site=config.site.name, timezone=config.site.timezone,
        now=window.now, bin_seconds=window.bin_seconds, window_start=window.start,
        n_bins=window.n_bins, users=usage.users, series=usage.series, current=usage.current,
        thresholds=thresholds,
        jobs_counted=usage.jobs_counted, skipped_lines=parsed.bad_lines,
        skipped_line_numbers=parsed.bad_line_numbers, source=source,
        generator=f"librarian {__version__}", cluster=panel.cluster,
        threshold_steps=steps, queue=queue, pressure=analysis.pressure,
        limit_now=tuple(at_limit_now(jobs, window.now, thresholds)),
        waits=analysis.wait_days(local_days(window.start, window.now, config.site.timezone)),
        efficiency=efficiency, history=history, groups=groups,
    )
    path = snapshot_path(config.site.data_dir, panel.qos, panel.file_cluster)
    previous = index.get(path.name)
    entry = write_snapshot(path, snap, previous)
    changed = entry.written == window.now
    log.info("%s: %d users, %d jobs counted -> %s%s", panel.label, len(usage.users),
             usage.jobs_counted, path, "" if changed else " (unchanged)")
    return QosOutcome(qos=panel.label, snapshot=path, users=len(usage.users),
                      jobs_counted=usage.jobs_counted, user_names=usage.users,
                      changed=changed, entry=entry,
                      overview=overview_row(snap, panel.key, panel.label, config.efficiency))


def _write_overview(config: Config, outcomes: Sequence[QosOutcome]) -> None:
    """overview.json: this cycle's rows, and the last ones of the QoS not
    collected this time (`--qos`), in the configuration's order."""
    rows = {**read_overview(config.site.data_dir),
            **{o.overview.key: o.overview for o in outcomes if o.overview is not None}}
    write_overview(config.site.data_dir, {p.key: rows[p.key] for p in config.panels
                                          if p.key in rows})
