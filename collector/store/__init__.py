"""The job store: every job the collector has seen, so a cycle asks sacct only
for what changed since the last one.

    store = JobStore.open(data_dir, bin_seconds)   # a damaged store is set aside
    plan = store.plan(cycle)                       # full backfill, or since the last cycle
    ids = store.open_ids(cluster, plan)            # jobs to ask for by id as well
    synced = store.advance(cycle, plan, answers)   # merged and written; binned per QoS
    verify(data_dir)                               # for `librarian doctor`

`records` (keys, merge, prune) and `plan` are pure; `files` is the Arrow IPC
files with their checksums; `sums` the cold records binned once. A cycle
reads and writes the hot records and the cold sums only; the records that
leave the hot part (once a day, when the frozen boundary moves) are written as
one new cold segment and their sums added. Segments are read only when an
answer replaces one of their records, or to make the sums anew.

Why Arrow IPC and not SQLite: every cycle bins every job in the window.
Reading 1,000,000 records takes 2.2 s from SQLite (Python rows) and 0.05 s
from Arrow IPC, and pyarrow is already the collector's CSV reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from collector.binning import Binned, Window, add_binned, bin_seconds
from collector.jobtable import JobTable, concat
from collector.store.files import (
    COLD_FILE,
    COLD_PREFIX,
    HOT_FILE,
    STATE_FILE,
    State,
    Store,
    StoreCorrupt,
    cold_segments,
    load_store,
    next_segment,
    read_cold,
    read_part,
    read_state,
    save_store,
    segments_fingerprint,
    set_aside,
    state_of,
    store_folder,
    verify_file,
    write_segment,
    write_state,
    write_table,
)
from collector.store.plan import (
    STORE_VERSION,
    StoreState,
    SyncPlan,
    day_chunks,
    fingerprint,
    plan_sync,
)
from collector.store.records import (
    DAY,
    Update,
    dedupe_last,
    frozen_boundary,
    merge,
    observe_reasons,
    open_job_ids,
    prune,
    record_keys,
    replaced_by,
    update,
)
from collector.store.sums import ColdSums, cold_sums, load_cold_sums, save_cold_sums


@dataclass(frozen=True)
class Cycle:
    """What one cycle asks of the store."""

    now: int                    # the cycle's time: the store is complete up to it after
    fingerprint: str            # what the store is filled for (clusters, QoS)
    keep_from: int              # records that ended before this are dropped
    overlap_seconds: int        # an incremental query reaches this far before the last cycle
    chunk_seconds: int          # the longest span of one backfill query
    clusters: tuple[str, ...]
    window_from: int = 0        # a backfill reads from here (0: keep_from) ...
    history_days_per_cycle: int = 0   # ... and each later cycle this many older days (0: all)

    @property
    def boundary(self) -> int:
        return frozen_boundary(self.now, self.overlap_seconds)

    @property
    def sums_from(self) -> int:
        """Where the cold records' hourly sums start: the window's start, as
        only the window is drawn in bins (the year is in days, store/days.py);
        summing from `keep_from` made them a year of hourly bins per QoS."""
        return max(self.keep_from, self.window_from) if self.window_from else self.keep_from


@dataclass(frozen=True)
class Seen:
    """The pending reasons squeue gave one cluster this cycle, by JobIDRaw."""

    job_ids: np.ndarray
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Synced:
    """The job store after a cycle: the hot records and the cold part's sums."""

    hot: dict[str, JobTable]
    cold: ColdSums
    records: int
    cold_rewritten: bool
    read_cold: Callable[[], dict[str, JobTable]] = dict   # the cold records, read on demand
    boundary: int = 0              # the frozen boundary: cold records ended before it
    folder: Path | None = None     # the store's folder (for the caches beside it)
    raw: State | None = None       # the state written (its files: the cold segments)

    @cached_property
    def _hot_by_qos(self) -> dict[str, dict[str, JobTable]]:
        return {cluster: jobs.by_qos() for cluster, jobs in self.hot.items()}

    @cached_property
    def _all_by_qos(self) -> dict[str, dict[str, JobTable]]:
        cold = self.read_cold()
        return {cl: concat([cold.get(cl, JobTable.empty()), self.hot.get(cl, JobTable.empty())]
                           ).by_qos() for cl in set(cold) | set(self.hot)}

    def hot_jobs(self, cluster: str, qos: str) -> JobTable:
        """The hot records of one QoS: every running and pending job among them."""
        return self._hot_by_qos.get(cluster, {}).get(qos, JobTable.empty())

    def jobs(self, cluster: str, qos: str) -> JobTable:
        """Every record of one QoS (cold and hot): what the exact intervals of
        the limit pressure need. The cold segments are read once per cycle."""
        return self._all_by_qos.get(cluster, {}).get(qos, JobTable.empty())

    def binned(self, cluster: str, qos: str, window: Window) -> Binned:
        """Resource-seconds per (user, account, partition) (JobTable.combined)."""
        hot = self._hot_by_qos.get(cluster, {}).get(qos, JobTable.empty())
        return add_binned(self.cold.binned(cluster, qos, window),
                          bin_seconds(hot.combined(), window), reuse_first=True)


class JobStore:
    """The store as a cycle found it (`open`), then brought up to date (`advance`)."""

    def __init__(self, folder: Path, bin_seconds_: int, raw: State | None,
                 hot: dict[str, JobTable], sums: ColdSums | None, damaged: str = "",
                 set_aside_as: str = "") -> None:
        self.folder, self.bin_seconds = folder, bin_seconds_
        self.raw, self.hot, self.sums = raw, hot, sums
        self.damaged, self.set_aside_as = damaged, set_aside_as
        self._seen: dict[str, Seen] = {}

    @classmethod
    def open(cls, data_dir: Path, bin_seconds_: int) -> JobStore:
        """Read the state, the hot records and the cold sums (if still valid);
        the cold segments are checked (size and CRC) but not parsed. A store
        that cannot be trusted is moved aside and opens empty, saying why."""
        folder = store_folder(data_dir)
        try:
            raw = read_state(folder)
            if raw is None:
                return cls(folder, bin_seconds_, None, {}, None)
            state_of(raw, folder)
            hot = read_part(folder, raw, HOT_FILE)
            for name in cold_segments(raw):
                verify_file(folder, raw, name)
            sums = load_cold_sums(folder, segments_fingerprint(raw), bin_seconds_)
            return cls(folder, bin_seconds_, raw, hot, sums)
        except StoreCorrupt as err:
            damaged = str(err)
        aside = set_aside(folder)
        return cls(folder, bin_seconds_, None, {}, None, damaged, str(aside))

    @property
    def state(self) -> StoreState | None:
        return state_of(self.raw, self.folder) if self.raw is not None else None

    def plan(self, cycle: Cycle, force_full: bool = False) -> SyncPlan:
        return plan_sync(self.state, cycle.fingerprint, cycle.now, cycle.keep_from,
                         cycle.overlap_seconds, cycle.chunk_seconds, force_full=force_full,
                         damaged=self.damaged, window_from=cycle.window_from or None,
                         history_days_per_cycle=cycle.history_days_per_cycle)

    def open_ids(self, cluster: str, plan: SyncPlan) -> np.ndarray:
        """JobIDRaw of the jobs open at the last cycle (none for a backfill)."""
        if plan.full:
            return np.zeros(0, dtype=np.int64)
        return open_job_ids(self.hot.get(cluster, JobTable.empty()))

    def advance(self, cycle: Cycle, plan: SyncPlan, answers: dict[str, JobTable],
                seen: dict[str, Seen] | None = None) -> Synced:
        """Merge the cycle's answers (cluster -> jobs, later rows winning) and
        the pending reasons squeue gave (`seen`), and write the store; OSError
        or StoreCorrupt if that fails."""
        self._seen = seen or {}
        fresh = {cl: dedupe_last(answers.get(cl, JobTable.empty())) for cl in cycle.clusters}
        previous = self.state
        state = StoreState(fingerprint=cycle.fingerprint, synced_to=cycle.now,
                           full_at=cycle.now if previous is None or plan.full
                           else previous.full_at, history_from=plan.history_from)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Sums that start after this window (a longer window configured) are
        # made anew from the segments, as sums that do not match them are.
        if plan.full or self.sums is None or self.sums.start > cycle.sums_from:
            return self._rebuild(cycle, state, fresh, keep_cold=not plan.full)
        return self._advance(cycle, state, fresh)

    def _observed(self, cluster: str, jobs: JobTable) -> JobTable:
        seen = self._seen.get(cluster)
        return observe_reasons(jobs, seen.job_ids, seen.reasons) if seen else jobs

    def _rebuild(self, cycle: Cycle, state: StoreState, fresh: dict[str, JobTable],
                 keep_cold: bool) -> Synced:
        """All cold records in one new segment and their sums made anew (a
        backfill, or sums that do not match the segments)."""
        raw = self.raw if keep_cold else None
        cold = read_cold(self.folder, raw) if raw is not None else {}
        hot = self.hot if keep_cold else {}
        empty = JobTable.empty()
        new_hot = {}
        for cl in cycle.clusters:
            up = update(cold.get(cl, empty), hot.get(cl, empty), fresh[cl], cycle.boundary,
                        cycle.keep_from)
            cold[cl], new_hot[cl] = up.cold, self._observed(cl, up.hot)
        # The previous state, even for a backfill: its files are removed once the
        # new state is written (they would otherwise stay on disk, unlisted).
        written = save_store(self.folder, Store(cold=cold, hot=new_hot, state=state), True,
                             self.raw)
        (segment,) = cold_segments(written)
        sums = cold_sums(cold, segments_fingerprint(written), segment, self.bin_seconds,
                         cycle.sums_from, cycle.boundary)
        save_cold_sums(self.folder, sums)
        self.raw, self.hot, self.sums = written, new_hot, sums
        return Synced(new_hot, sums, int(written["records"]), True, lambda: cold,
                      cycle.boundary, self.folder, written)

    def _advance(self, cycle: Cycle, state: StoreState, fresh: dict[str, JobTable]) -> Synced:
        """The usual cycle: fresh answers merged into the hot part; what ended
        before the boundary moved to a new segment; replaced cold records taken
        out of their segments; segments wholly before the history dropped."""
        assert self.raw is not None
        assert self.sums is not None
        raw, sums, empty = self.raw, self.sums, JobTable.empty()
        files = {n: raw["files"][n] for n in cold_segments(raw)}
        removed: dict[str, JobTable] = {}
        touched = sums.segments_hit(fresh)   # cold records replaced (rare)
        for name in touched:
            kept = {}
            for cl, jobs in read_part(self.folder, raw, name).items():
                gone = replaced_by(jobs, fresh.get(cl, empty))
                removed[cl] = concat([removed.get(cl, empty), jobs.take(gone)])
                kept[cl] = jobs.take(~gone)
            files[name] = write_segment(self.folder, name, kept)
        new_hot, moved = {}, {}
        for cl in cycle.clusters:
            merged = self._observed(cl, merge(self.hot.get(cl, empty), fresh[cl]))
            ended = ~np.isnan(merged.end) & (merged.end < cycle.boundary)
            moved[cl] = merged.take(ended)
            new_hot[cl] = prune(merged.take(~ended), cycle.keep_from)
        segment = ""
        if any(len(t) for t in moved.values()):
            segment = next_segment(raw)
            files[segment] = write_segment(self.folder, segment,
                                           {k: v for k, v in moved.items() if len(v)})
        # Segments wholly before the history kept, or emptied by replacements.
        dropped = [n for n in cold_segments(raw) if not files[n].get("records")
                   or (files[n].get("max_end") is not None
                       and files[n]["max_end"] < cycle.keep_from)]
        for name in dropped:
            del files[name]
        files[HOT_FILE] = write_table(self.folder, HOT_FILE, new_hot)
        written = write_state(self.folder, state, files)
        for name in dropped:
            (self.folder / name).unlink(missing_ok=True)
        changed = bool(segment or touched or dropped)
        if changed:  # else the sums still hold: a later window is a later slice of them
            sums = sums.updated(segments_fingerprint(written), tuple(cold_segments(written)),
                                cycle.sums_from, max(cycle.boundary, sums.end), moved, segment,
                                removed)
            save_cold_sums(self.folder, sums)
        self.raw, self.hot, self.sums = written, new_hot, sums
        folder = self.folder
        return Synced(new_hot, sums, int(written["records"]), changed,
                      lambda: read_cold(folder, written), cycle.boundary, folder, written)


@dataclass(frozen=True)
class Health:
    """What `verify` found: a store that can be trusted."""

    records: int
    synced_to: int


def verify(data_dir: Path) -> Health | None:
    """Check every file of the store against its checksum (None: no store yet);
    `StoreCorrupt` says what is wrong."""
    folder = store_folder(data_dir)
    raw = read_state(folder)
    if raw is None:
        return None
    state = state_of(raw, folder)
    for name in (*cold_segments(raw), HOT_FILE):
        verify_file(folder, raw, name)
    return Health(records=int(raw.get("records", 0)), synced_to=state.synced_to)


@dataclass(frozen=True)
class SyncReport:
    """What one cycle asked of slurmdbd."""

    full: bool
    reason: str
    queries: int = 0
    rows: int = 0                   # job lines sacct printed (allocations)
    usage_rows: int = 0             # lines of the usage queries (the ended jobs' steps)
    sacct_seconds: float = 0.0
    records: int = 0                # records in the store after the cycle
    requeried_open: int = 0         # open jobs asked for by id (missing from the time query)
    set_aside: str = ""
    spans: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    cold_rewritten: bool = False    # cold records written (a backfill, the daily move, a fix)
    older: int = 0                  # the last `older` spans read history not yet kept
    history_from: int = 0           # the history is complete from here (0: all of it)


__all__ = [
    "COLD_FILE", "COLD_PREFIX", "DAY", "HOT_FILE", "STATE_FILE", "STORE_VERSION", "ColdSums",
    "Cycle", "Health", "JobStore", "Seen", "Store", "StoreCorrupt", "StoreState", "SyncPlan",
    "SyncReport", "Synced", "Update", "cold_segments", "cold_sums", "concat", "day_chunks",
    "dedupe_last", "fingerprint", "frozen_boundary", "load_store", "merge", "open_job_ids",
    "plan_sync", "prune", "read_state", "record_keys", "replaced_by", "save_cold_sums",
    "save_store", "segments_fingerprint", "set_aside", "store_folder", "update", "verify",
    "verify_file",
]
