"""The collection cycle: sacct (or a saved file) -> job store -> bins -> snapshots.

This is the I/O shell around the pure modules. A live cycle brings the job
store (collector/store.py) up to date: a full backfill in day-sized queries
the first time (or after a gap, a configuration change, a damaged store or
--full), else one query for the jobs active since the last cycle less a
safety overlap, plus a query by id for jobs that were open at the last cycle
and fell outside it. Then it bins every QoS from the store.

Nothing is written until every query has been answered and parsed, so a
failed sacct, a time-out or unreadable output leaves the store and every
previous snapshot exactly as they were. The store is written before the
snapshots, so the snapshots never run ahead of it.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collector import __version__
from collector.binning import (
    Binned,
    Usage,
    Window,
    add_binned,
    bin_seconds,
    bin_usage,
    make_window,
    usage_of,
)
from collector.config import Config, Panel, QosConfig
from collector.limits import (
    LimitsError,
    effective_limits,
    last_known,
    limit_steps,
    read_history,
    read_slurm_limits,
    record_limits,
    write_history,
)
from collector.lock import DataLock
from collector.observables import LIMIT_KEYS, Limits
from collector.palette import assign_colors
from collector.parse import JobTable, ParseResult, SacctFormatError, parse_sacct
from collector.sacct import (
    SACCT_TIME_ZONE,
    Runner,
    SacctError,
    build_sacct_args,
    run_sacct,
    sacct_executable,
)
from collector.snapshot import Snapshot, snapshot_path, write_snapshot
from collector.status import read_status, record_sync, write_status
from collector.store import (
    DAY,
    HOT_FILE,
    ColdSums,
    Store,
    StoreCorrupt,
    StoreState,
    SyncReport,
    cold_segments,
    cold_sums,
    concat,
    dedupe_last,
    fingerprint,
    frozen_boundary,
    load_cold_sums,
    merge,
    next_segment,
    open_job_ids,
    plan_sync,
    prune,
    read_cold,
    read_part,
    read_state,
    replaced_by,
    save_cold_sums,
    save_store,
    segments_fingerprint,
    set_aside,
    state_of,
    store_folder,
    update,
    verify_file,
    write_segment,
    write_state,
    write_table,
)

log = logging.getLogger("librarian.collect")

# Open jobs asked for by id go in batches of this many ids per sacct call.
IDS_PER_QUERY = 500


class CollectError(Exception):
    """The input could not be had or read; nothing was written."""


@dataclass(frozen=True)
class QosOutcome:
    qos: str
    snapshot: Path
    users: int
    jobs_counted: int
    plots: tuple[Path, ...] = ()


@dataclass(frozen=True)
class CollectReport:
    window: Window
    parse: ParseResult
    outcomes: tuple[QosOutcome, ...] = field(default_factory=tuple)
    sync: SyncReport | None = None
    limits_warning: str = ""


def _read_file(config: Config, sacct_file: Path) -> ParseResult:
    try:
        data = sacct_file.read_bytes()
    except OSError as err:
        raise CollectError(f"cannot read {sacct_file}: {err.strerror}") from err
    try:
        return parse_sacct(data, config.site.timezone)
    except SacctFormatError as err:
        raise CollectError(f"{sacct_file}: {err}") from err


def combine(results: Sequence[ParseResult]) -> ParseResult:
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


class _Asker:
    """Runs sacct queries and keeps count of what was asked of slurmdbd."""

    def __init__(self, config: Config, qos: Sequence[str], runner: Runner,
                 environ: Mapping[str, str] | None) -> None:
        self.config, self.qos, self.runner, self.environ = config, list(qos), runner, environ
        self.queries = 0
        self.rows = 0
        self.seconds = 0.0
        self.parses: list[ParseResult] = []

    def ask(self, cluster: str, start: int, end: int, job_ids: Sequence[int] = ()) -> JobTable:
        args = build_sacct_args(sacct_executable(self.config.site.slurm_bin), self.qos,
                                start, end, cluster=cluster, job_ids=job_ids)
        log.debug("running %s", " ".join(args))
        t = time.perf_counter()
        try:
            data = run_sacct(args, self.config.collect.sacct_timeout_seconds,
                             runner=self.runner, environ=self.environ)
        except SacctError as err:
            raise CollectError(str(err)) from err
        finally:
            self.seconds += time.perf_counter() - t
            self.queries += 1
        try:
            parsed = parse_sacct(data, SACCT_TIME_ZONE)
        except SacctFormatError as err:
            raise CollectError(f"unreadable sacct output: {err}; command: {' '.join(args)}") from err
        if parsed.bad_lines:
            log.warning("sacct %s..%s%s: %s", start, end, f" -M {cluster}" if cluster else "",
                        parsed.bad_summary())
        self.rows += parsed.data_lines
        self.parses.append(parsed)
        return parsed.jobs


@dataclass(frozen=True)
class Synced:
    """The job store after a cycle: the hot records and the cold part's sums."""

    hot: dict[str, JobTable]
    cold: ColdSums

    def binned(self, cluster: str, qos: str, window: Window) -> Binned:
        return add_binned(self.cold.binned(cluster, qos, window),
                          bin_seconds(self.hot.get(cluster, JobTable.empty()), window, qos))


def _load(folder: Path, bin_seconds_: int
          ) -> tuple[dict | None, dict[str, JobTable], ColdSums | None, str, str]:
    """(raw state, hot records, cold sums if still valid, why damaged, where set aside).
    The cold segments are checked (size and CRC) but not parsed."""
    try:
        raw = read_state(folder)
        if raw is None:
            return None, {}, None, "", ""
        state_of(raw, folder)
        hot = read_part(folder, raw, HOT_FILE)
        for name in cold_segments(raw):
            verify_file(folder, raw, name)
        sums = load_cold_sums(folder, segments_fingerprint(raw), bin_seconds_)
        return raw, hot, sums, "", ""
    except StoreCorrupt as err:
        damaged = str(err)
    aside = set_aside(folder)
    log.error("job store damaged (%s): set aside as %s; rebuilding it from a full query",
              damaged, aside)
    return None, {}, None, damaged, str(aside)


def sync_store(config: Config, window: Window, runner: Runner = subprocess.run,
               environ: Mapping[str, str] | None = None, full: bool = False
               ) -> tuple[Synced, SyncReport, ParseResult]:
    """Bring the job store up to `window.now` and write it; raise CollectError
    (nothing written) if any query fails.

    A cycle reads and writes the hot records and the cold sums only; the
    records that leave the hot part (once a day, when the frozen boundary
    moves) are written as one new cold segment and their sums added. Cold
    segments are read only when an answer replaces one of their records, or
    to make the sums anew when they do not match the segments."""
    folder = store_folder(config.site.data_dir)
    c = config.collect
    keep_from = window.start - (c.history_days - c.window_days) * DAY
    fp = fingerprint(config.site.clusters, [q.name for q in config.qos], c.history_days)
    raw, hot, sums, damaged, aside = _load(folder, window.bin_seconds)
    state = state_of(raw, folder) if raw is not None else None
    plan = plan_sync(state, fp, window.now, keep_from, c.overlap_minutes * 60,
                     c.chunk_hours * 3600, force_full=full or not c.incremental, damaged=damaged)
    log.info("job store: %s, %d quer%s from %s", "full backfill (" + plan.reason + ")"
             if plan.full else "incremental", len(plan.spans),
             "y" if len(plan.spans) == 1 else "ies", plan.start)
    if plan.full:
        raw, hot, sums = None, {}, None
    asker = _Asker(config, [q.name for q in config.qos], runner, environ)
    boundary = frozen_boundary(window.now, c.overlap_minutes * 60)
    empty = JobTable.empty()
    fresh: dict[str, JobTable] = {}
    requeried = 0
    for cluster in config.clusters:
        new = concat([asker.ask(cluster, s, e) for s, e in plan.spans])
        # Jobs open at the last cycle that the time query did not return: ask by id.
        missing = np.setdiff1d(open_job_ids(hot.get(cluster, empty)), new.job_id)
        requeried += len(missing)
        extra = [asker.ask(cluster, keep_from, window.now, missing[i:i + IDS_PER_QUERY])
                 for i in range(0, len(missing), IDS_PER_QUERY)]
        # Later answers win: the time query comes after the by-id ones.
        fresh[cluster] = dedupe_last(concat([*extra, new]))

    synced_state = StoreState(fingerprint=fp, synced_to=window.now,
                              full_at=window.now if state is None or plan.full
                              else state.full_at)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if sums is None:
            hot, sums, written = _rebuild(folder, raw, hot, fresh, synced_state, boundary,
                                          keep_from, window.bin_seconds, config.clusters)
            cold_written = True
        else:
            hot, sums, written, cold_written = _advance(
                folder, raw, hot, sums, fresh, synced_state, boundary, keep_from, config.clusters)
    except OSError as err:
        raise CollectError(f"cannot write the job store in {folder}: {err.strerror or err}") from err
    except StoreCorrupt as err:  # a segment went bad within this cycle: rebuild next time
        raise CollectError(f"the job store is damaged ({err}); run again (or with --full) "
                           "to rebuild it") from err
    records = int(written["records"])
    report = SyncReport(full=plan.full, reason=plan.reason, queries=asker.queries,
                        rows=asker.rows, sacct_seconds=round(asker.seconds, 3),
                        records=records, requeried_open=requeried, set_aside=aside,
                        spans=plan.spans, cold_rewritten=cold_written)
    return Synced(hot=hot, cold=sums), report, combine(asker.parses)


def _rebuild(folder: Path, raw: dict | None, hot: dict[str, JobTable],
             fresh: dict[str, JobTable], state: StoreState, boundary: int, keep_from: int,
             bin_seconds_: int, clusters: tuple[str, ...]
             ) -> tuple[dict[str, JobTable], ColdSums, dict]:
    """All cold records in one new segment and their sums made anew (a backfill,
    or sums that do not match the segments)."""
    cold = read_cold(folder, raw) if raw is not None else {}
    empty = JobTable.empty()
    new_hot = {}
    for cl in clusters:
        up = update(cold.get(cl, empty), hot.get(cl, empty), fresh[cl], boundary, keep_from)
        cold[cl], new_hot[cl] = up.cold, up.hot
    written = save_store(folder, Store(cold=cold, hot=new_hot, state=state), True, raw)
    (segment,) = cold_segments(written)
    sums = cold_sums(cold, segments_fingerprint(written), segment, bin_seconds_, keep_from,
                     boundary)
    save_cold_sums(folder, sums)
    return new_hot, sums, written


def _advance(folder: Path, raw: dict, hot: dict[str, JobTable], sums: ColdSums,
             fresh: dict[str, JobTable], state: StoreState, boundary: int, keep_from: int,
             clusters: tuple[str, ...]
             ) -> tuple[dict[str, JobTable], ColdSums, dict, bool]:
    """The usual cycle: fresh answers merged into the hot part; what ended
    before the boundary moved to a new segment; replaced cold records taken out
    of their segments; segments wholly before the history dropped."""
    empty = JobTable.empty()
    files = {n: raw["files"][n] for n in cold_segments(raw)}
    # Cold records that fresh answers replace: out of their segments (rare).
    removed: dict[str, JobTable] = {}
    touched = sorted({sums.segments[int(g)] for cl in clusters
                      for g in sums.key_segment.get(cl, np.zeros(0, np.int64))[
                          sums.hit(cl, fresh[cl])]})
    for name in touched:
        tables = read_part(folder, raw, name)
        kept = {}
        for cl, jobs in tables.items():
            gone = replaced_by(jobs, fresh.get(cl, empty))
            removed[cl] = concat([removed.get(cl, empty), jobs.take(gone)])
            kept[cl] = jobs.take(~gone)
        files[name] = write_segment(folder, name, kept)
    new_hot, moved = {}, {}
    for cl in clusters:
        merged = merge(hot.get(cl, empty), fresh[cl])
        ended = ~np.isnan(merged.end) & (merged.end < boundary)
        moved[cl] = merged.take(ended)
        new_hot[cl] = prune(merged.take(~ended), keep_from)
    segment = ""
    if any(len(t) for t in moved.values()):
        segment = next_segment(raw)
        files[segment] = write_segment(folder, segment, {k: v for k, v in moved.items()
                                                         if len(v)})
    dropped = [n for n in cold_segments(raw) if files[n].get("max_end") is not None
               and files[n]["max_end"] < keep_from]
    for name in dropped:
        del files[name]
    files[HOT_FILE] = write_table(folder, HOT_FILE, new_hot)
    written = write_state(folder, state, files)
    for name in dropped:
        (folder / name).unlink(missing_ok=True)
    changed = bool(segment or touched or dropped)
    if changed:  # else the sums still hold: a later window is a later slice of them
        sums = sums.updated(segments_fingerprint(written), tuple(cold_segments(written)),
                            keep_from, max(boundary, sums.end), moved, segment, removed)
        save_cold_sums(folder, sums)
    return new_hot, sums, written, changed


@dataclass(frozen=True)
class LimitsReport:
    limits: dict[str, Limits]
    steps: dict[str, dict[str, tuple[tuple[int, float | None], ...]]]
    warning: str = ""


def configured_limits(config: Config) -> LimitsReport:
    """The configuration's numbers only (collecting from a saved file: no Slurm to ask)."""
    return LimitsReport(limits={q.name: q.limits for q in config.qos}, steps={})


def _needs_slurm(q: QosConfig) -> bool:
    return q.auto_limits and any(q.limits.get(k) is None for k in LIMIT_KEYS)


def current_limits(config: Config, window: Window, runner: Runner = subprocess.run,
                   environ: Mapping[str, str] | None = None) -> LimitsReport:
    """Limits from sacctmgr (where auto) and the configuration, recorded with
    their dates in limits.json; a failing sacctmgr keeps the last known ones."""
    data_dir = config.site.data_dir
    slurm: dict[str, Limits] | None = None
    warning = ""
    if any(_needs_slurm(q) for q in config.qos):
        try:
            slurm = read_slurm_limits(config.site.slurm_bin,
                                      config.collect.sacct_timeout_seconds, runner, environ)
        except LimitsError as err:
            warning = f"QoS limits not read from Slurm, last known kept: {err}"
            log.warning("%s", warning)
    history = read_history(data_dir)
    before = history
    keep_from = window.start - (config.collect.history_days - config.collect.window_days) * DAY
    limits = {}
    for q in config.qos:
        if slurm is not None and _needs_slurm(q) and q.name not in slurm:
            log.warning("sacctmgr lists no QoS %r: its limits come from the configuration only",
                        q.name)
        if slurm is None and _needs_slurm(q):
            limits[q.name] = effective_limits(q, last_known(history, q.name))
        else:
            limits[q.name] = effective_limits(q, (slurm or {}).get(q.name))
        history = record_limits(history, q.name, limits[q.name], window.now, keep_from)
    if history != before:
        write_history(data_dir, history)
    steps = {q.name: limit_steps(history.get(q.name, []), window) for q in config.qos}
    return LimitsReport(limits=limits, steps=steps, warning=warning)


def collect(config: Config, now: float, qos_names: Sequence[str] | None = None,
            sacct_file: Path | None = None, plots: bool = True,
            runner: Runner = subprocess.run,
            environ: Mapping[str, str] | None = None, full: bool = False) -> CollectReport:
    """Collect every requested QoS at time `now` (epoch seconds) and write its files.

    Live collection keeps the job store of every configured QoS up to date
    (one sacct query covers them all), whichever QoS are written."""
    selected = {q.name for q in config.qos_named(list(qos_names) if qos_names else None)}
    window = make_window(now, config.collect.bin_seconds, config.collect.n_bins)
    data_dir = config.site.data_dir
    sync = None
    with DataLock(data_dir):
        if sacct_file is not None:
            parsed = _read_file(config, sacct_file)
            if parsed.bad_lines:
                log.warning("%s: %s", sacct_file, parsed.bad_summary())
            jobs = {cluster: parsed.jobs for cluster in config.clusters}
            source = f"file:{sacct_file}"
            limits = configured_limits(config)
        else:
            synced, sync, parsed = sync_store(config, window, runner, environ, full)
            source = "sacct"
            limits = current_limits(config, window, runner, environ)
        panels = [p for p in config.panels if p.qos in selected]
        if sacct_file is not None:
            usages = {p: bin_usage(jobs.get(p.cluster, JobTable.empty()), window, p.qos)
                      for p in panels}
        else:
            usages = {p: usage_of(synced.binned(p.cluster, p.qos, window), window)
                      for p in panels}
        # One colour per user across this run's QoS, so the charts of all QoS agree.
        colors = assign_colors(u for usage in usages.values() for u in usage.users)
        outcomes = [_write_panel(config, p, usages[p], parsed, source, plots, colors, limits)
                    for p in panels]
        if sync is not None:
            write_status(data_dir, record_sync(read_status(data_dir), window.now, sync))
    return CollectReport(window=window, parse=parsed, outcomes=tuple(outcomes), sync=sync,
                         limits_warning=limits.warning)


def _write_panel(config: Config, panel: Panel, usage: Usage, parsed: ParseResult,
                 source: str, plots: bool, colors: dict[str, str],
                 limits: LimitsReport) -> QosOutcome:
    window = usage.window
    lim = limits.limits[panel.qos]
    snap = Snapshot(
        qos=panel.qos, site=config.site.name, timezone=config.site.timezone,
        now=window.now, bin_seconds=window.bin_seconds, window_start=window.start,
        n_bins=window.n_bins, users=usage.users, series=usage.series, current=usage.current,
        thresholds=lim.thresholds(),
        jobs_counted=usage.jobs_counted, skipped_lines=parsed.bad_lines,
        skipped_line_numbers=parsed.bad_line_numbers, source=source,
        generator=f"librarian {__version__}", cluster=panel.cluster,
        threshold_steps=limits.steps.get(panel.qos, {}),
    )
    path = snapshot_path(config.site.data_dir, panel.qos, panel.file_cluster)
    write_snapshot(path, snap)
    written: tuple[Path, ...] = ()
    if plots:
        from collector.plots import write_plots  # matplotlib is slow to import

        written = tuple(write_plots(snap, config.site.data_dir, colors, panel.file_cluster))
    log.info("%s: %d users, %d jobs counted -> %s", panel.label, len(usage.users),
             usage.jobs_counted, path)
    return QosOutcome(qos=panel.label, snapshot=path, users=len(usage.users),
                      jobs_counted=usage.jobs_counted, plots=written)
