"""The snapshot: one QoS's binned usage, the contract between collector and app.

`data_<qos>.json` is a drop-in for the seed's file (metadata, time_idxs, users,
observables, thresholds, nice_names) plus what it lacked: `schema_version`,
the window, the skipped-line count and each user's current usage. Version 2
adds the queue: the queued observables beside the seed's four (same shape),
the queue now as squeue read it, the limit pressure per bin, the resources
at their limit now, and the waits of the jobs that started in the window.
Version 3 adds the efficiency sums per user and day, version 4 the used
series (USED_NCPUS, USED_MEMORY: what ended jobs used of what they held),
version 5 the daily history (resource-hours per user and local day over the
history kept, and the jobs started each day: collector/history.py), version
6 the same series per account and per partition (`groups`). Files of
versions 1-5 still read (what they lack reads as nothing). The JSON Schema is
`snapshot.schema.json` beside this file.

`to_dict`/`from_dict` are pure; `write_snapshot` is atomic (collector/atomic.py),
so a reader never sees half a file.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from collector.atomic import write_atomic
from collector.checked import Entry, content_digest, entry_for, read_index
from collector.efficiency import NO_EFFICIENCY, SUMS, EfficiencyDays
from collector.history import History, midnights
from collector.jobtable import GROUPINGS
from collector.observables import KEYS, OBSERVABLES, QUEUED, USED
from collector.pressure import NO_WAIT_DAYS, AtLimitNow, Pressure, WaitDays
from collector.squeue import QueueRow

SCHEMA_VERSION = 6
# 1: before the queue (its queued series read as zeros); 2: before efficiency;
# 3: before the used series (read as zeros: nothing recorded); 4: before the
# daily history (none).
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6)
SCHEMA_PATH = Path(__file__).with_name("snapshot.schema.json")
DECIMALS = 4


class SnapshotError(ValueError):
    """A snapshot file or dict that is not a valid snapshot."""


@dataclass(frozen=True)
class QueueState:
    """The queue as squeue showed it at collection (`read_at`), or since when
    it is unknown (`error` says why; `read_at` is then the last good read)."""

    read_at: int | None
    error: str = ""
    rows: tuple[QueueRow, ...] = ()
    skipped_lines: int = 0

    @property
    def known(self) -> bool:
        return not self.error




@dataclass(frozen=True)
class Grouping:
    """The charts' series per account or partition (the users' are the
    snapshot's own): names, observable -> (names x bins), observable ->
    (names,) running now, and the daily history."""

    names: tuple[str, ...]
    series: dict[str, np.ndarray]
    current: dict[str, np.ndarray]
    history: History | None = None


@dataclass(frozen=True)
class Snapshot:
    qos: str
    site: str
    timezone: str
    now: int                          # collection time, epoch seconds
    bin_seconds: int
    window_start: int                 # first bin's start, epoch seconds
    n_bins: int
    users: tuple[str, ...]
    series: dict[str, np.ndarray]     # observable -> (users x bins)
    current: dict[str, np.ndarray]    # observable -> (users,), jobs running at `now`
    thresholds: dict[str, float | None]
    jobs_counted: int = 0
    skipped_lines: int = 0
    skipped_line_numbers: tuple[int, ...] = ()
    source: str = ""
    generator: str = ""
    cluster: str = ""                 # "" : the cluster of the local slurm.conf
    # observable -> ((from, limit), ...): the limit's steps over the window,
    # the first at window_start. Empty: `thresholds` held all along.
    threshold_steps: dict[str, tuple[tuple[int, float | None], ...]] = \
        dataclasses.field(default_factory=dict)
    queue: QueueState | None = None   # None: not read (a saved file, or a version 1 snapshot)
    pressure: dict[str, Pressure] = dataclasses.field(default_factory=dict)
    limit_now: tuple[AtLimitNow, ...] = ()
    waits: WaitDays = NO_WAIT_DAYS
    # What the ended jobs used, per user and local day of End (collector/efficiency.py).
    efficiency: EfficiencyDays = NO_EFFICIENCY
    # Resource-seconds per user and local day over the history kept (None: not made).
    history: History | None = None
    # The same series, values now and history per account and per partition.
    groups: dict[str, Grouping] = dataclasses.field(default_factory=dict)

    def grouped(self, by: str) -> Snapshot:
        """The snapshot with its users, series, values now and history those of
        one grouping (GROUPINGS; "user", or one not collected: itself)."""
        g = self.groups.get(by)
        if g is None:
            return self
        return dataclasses.replace(self, users=g.names, series=g.series, current=g.current,
                                   history=g.history, groups={})

    def limit_steps(self, obs: str) -> tuple[tuple[int, float | None], ...]:
        """The limit's steps for one observable (one step when it never changed)."""
        steps = self.threshold_steps.get(obs)
        return steps if steps else ((self.window_start, self.thresholds.get(obs)),)

    def bin_starts(self) -> np.ndarray:
        return self.window_start + self.bin_seconds * np.arange(self.n_bins, dtype=np.int64)

    def overlap(self, start: float, end: float) -> np.ndarray:
        """Seconds of each bin inside [start, end) (the last bin ends at `now`)."""
        starts = self.bin_starts()
        ends = np.minimum(starts + self.bin_seconds, self.now)
        return np.clip(np.minimum(ends, end) - np.maximum(starts, start), 0, None)

    def limit_per_bin(self, obs: str) -> np.ndarray:
        """The limit in force at each bin's start (NaN: none)."""
        starts = self.bin_starts()
        out = np.full(self.n_bins, np.nan)
        for t, v in self.limit_steps(obs):
            out[starts >= t] = np.nan if v is None else v
        return out


def _iso(epoch: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(int(epoch), tz).isoformat()


def _epoch(text: Any, key: str) -> int:
    if not isinstance(text, str):
        raise SnapshotError(f"{key} must be an ISO 8601 time, got {text!r}")
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise SnapshotError(f"{key} is not an ISO 8601 time: {text!r}") from None
    if t.tzinfo is None:
        raise SnapshotError(f"{key} has no UTC offset: {text!r}")
    return int(t.timestamp())


def _ints(arr: np.ndarray, arrays: bool) -> list[int] | np.ndarray:
    values = np.ascontiguousarray(arr, dtype=np.int64)
    return values if arrays else values.tolist()


def _values(arr: np.ndarray, arrays: bool) -> list[float] | np.ndarray:
    rounded = np.round(arr.astype(np.float64), DECIMALS)
    return rounded if arrays else rounded.tolist()


def _named_rows(matrix: np.ndarray, names: tuple[str, ...], arrays: bool) -> dict[str, Any]:
    """name -> its row of a (names x bins) matrix, rounded: the matrix at once
    (a snapshot has hundreds of rows; rounding each alone cost a second a
    cycle at 500 QoS)."""
    rounded = np.round(np.asarray(matrix, dtype=np.float64), DECIMALS)
    # A row of zeros (no GPUs, nothing queued, no usage read: most rows of
    # most groups) is written 0,0,... (the same numbers as 0.0, half the
    # bytes to write and to read).
    zeros = np.zeros(rounded.shape[-1], dtype=np.int8)
    out: dict[str, Any] = {}
    for n, row in zip(names, rounded, strict=True):
        if row.any():
            out[n] = row if arrays else row.tolist()
        else:
            out[n] = zeros if arrays else [0] * len(zeros)
    return out


@functools.lru_cache(maxsize=16)
def _time_idxs(window_start: int, bin_seconds: int, n_bins: int, timezone: str
               ) -> tuple[str, ...]:
    """Every bin start as ISO text: the same for every QoS of a cycle, made once."""
    tz = ZoneInfo(timezone)
    return tuple(_iso(window_start + i * bin_seconds, tz) for i in range(n_bins))


def to_dict(snap: Snapshot, arrays: bool = False) -> dict[str, Any]:
    """The JSON document for a snapshot (pure). With `arrays`, the series are
    numpy arrays (for orjson) instead of lists."""
    tz = ZoneInfo(snap.timezone)
    return {
        "schema_version": SCHEMA_VERSION,
        "metadata": {
            "qos": snap.qos,
            "last_updated": _iso(snap.now, tz),
            "time_resolution_seconds": snap.bin_seconds,
            "site": snap.site,
            "timezone": snap.timezone,
            "window_start": _iso(snap.window_start, tz),
            "window_end": _iso(snap.now, tz),
            "n_bins": snap.n_bins,
            "jobs_counted": snap.jobs_counted,
            "skipped_lines": snap.skipped_lines,
            "skipped_line_numbers": list(snap.skipped_line_numbers),
            "source": snap.source,
            "generator": snap.generator,
            "cluster": snap.cluster,
        },
        "time_idxs": list(_time_idxs(snap.window_start, snap.bin_seconds, snap.n_bins,
                                     snap.timezone)),
        "users": list(snap.users),
        "observables": {
            obs: _named_rows(snap.series[obs], snap.users, arrays)
            for obs in KEYS
        },
        "current_usage": {
            u: {obs: round(float(snap.current[obs][i]), DECIMALS) for obs in KEYS}
            for i, u in enumerate(snap.users)
        },
        "thresholds": dict(snap.thresholds),
        "threshold_steps": {
            obs: [{"from": _iso(t, tz), "value": v} for t, v in steps]
            for obs, steps in snap.threshold_steps.items()
        },
        "nice_names": {o.key: o.title for o in OBSERVABLES},
        "queue": _queue_doc(snap.queue, tz),
        "pressure": {k: {"at_limit_seconds": _values(p.at_limit, arrays),
                         "waiting_at_limit_seconds": _values(p.waiting_at_limit, arrays),
                         "peak": _values(p.peak, arrays)} for k, p in snap.pressure.items()},
        "limit_now": [{"key": a.key, "used": a.used, "limit": a.limit,
                       "holders": [[u, round(x, DECIMALS)] for u, x in a.holders],
                       "waiting_jobs": a.waiting_jobs,
                       "frees_by": None if a.frees_by is None else _iso(int(a.frees_by), tz)}
                      for a in snap.limit_now],
        "waits": _waits_doc(snap.waits, tz, arrays),
        "efficiency": _efficiency_doc(snap.efficiency, tz, arrays),
        "history": _history_doc(snap.history, snap.timezone, arrays),
        "groups": {by: {"names": list(g.names),
                        "observables": {obs: _named_rows(g.series[obs], g.names, arrays)
                                        for obs in KEYS},
                        "current_usage": {n: {obs: round(float(g.current[obs][i]), DECIMALS)
                                              for obs in KEYS} for i, n in enumerate(g.names)},
                        "history": _history_doc(g.history, snap.timezone, arrays)}
                   for by, g in snap.groups.items()},
    }


def _history_doc(h: History | None, timezone: str, arrays: bool) -> dict[str, Any] | None:
    """Resource-hours per user and local day (each key of `observables`), and
    the jobs started each day; `day_starts` has the midnight after the last day too."""
    if h is None:
        return None
    tz = ZoneInfo(timezone)
    return {"first_day": h.first.isoformat(),
            "day_starts": [_iso(int(t), tz) for t in midnights(h.first, h.n_days, timezone)],
            "users": list(h.users),
            "hours": {k: _values(h.seconds[i] / 3600.0, arrays) for i, k in enumerate(KEYS)},
            "started": _ints(h.started, arrays),
            "complete_from": _iso(h.complete_from, tz) if h.complete_from else None}


def _history_of_doc(doc: Any) -> History:
    from datetime import date

    first = date.fromisoformat(str(doc["first_day"]))
    users = tuple(map(str, doc["users"]))
    n_days = len(doc["day_starts"]) - 1
    hours = doc["hours"]
    seconds = np.zeros((len(KEYS), len(users), n_days))
    for i, k in enumerate(KEYS):
        if k in hours:
            values = np.asarray(hours[k], dtype=np.float64).reshape(len(users), n_days)
            seconds[i] = values * 3600.0
    started = np.asarray(doc["started"], dtype=np.float64).reshape(len(users), n_days)
    complete = doc.get("complete_from")
    return History(first, users, seconds, started,
                   int(datetime.fromisoformat(complete).timestamp()) if complete else 0)


def _efficiency_doc(e: EfficiencyDays, tz: ZoneInfo, arrays: bool) -> dict[str, Any]:
    return {"day_starts": [_iso(int(t), tz) for t in e.day_starts], "users": list(e.users),
            "user": _ints(e.user, arrays), "day": _ints(e.day, arrays),
            **{k: _values(v, arrays) for k, v in e.sums.items()}}


def _waits_doc(w: WaitDays, tz: ZoneInfo, arrays: bool) -> dict[str, Any]:
    return {"day_starts": [_iso(int(t), tz) for t in w.day_starts], "users": list(w.users),
            "user": _ints(w.user, arrays), "day": _ints(w.day, arrays),
            "jobs": _ints(w.jobs, arrays), "wait_seconds": _values(w.wait, arrays),
            "at_limit_seconds": _values(w.at_limit, arrays),
            "seen_limit": _ints(w.seen_limit, arrays), "hist_cell": _ints(w.hist_cell, arrays),
            "hist_bin": _ints(w.hist_bin, arrays), "hist_count": _ints(w.hist_count, arrays)}


def _queue_doc(queue: QueueState | None, tz: ZoneInfo) -> dict[str, Any] | None:
    if queue is None:
        return None
    return {"read_at": None if queue.read_at is None else _iso(queue.read_at, tz),
            "error": queue.error, "skipped_lines": queue.skipped_lines,
            "rows": [{"user": r.user, "jobs": r.jobs, "cpus": r.cpus, "gpus": r.gpus,
                      "mem_gib": round(r.mem_gib, DECIMALS),
                      "longest_wait_seconds": round(r.longest_wait), "reason": r.reason,
                      "reason_words": r.reason_words, "held": r.held, "reasons": r.reasons}
                     for r in queue.rows]}


def _steps(d: Mapping[str, Any]) -> dict[str, tuple[tuple[int, float | None], ...]]:
    raw = d.get("threshold_steps", {})
    if not isinstance(raw, dict):
        raise SnapshotError("threshold_steps must be an object")
    out = {}
    for obs, steps in raw.items():
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise SnapshotError(f"threshold_steps.{obs} must be a list of {{from, value}}")
        try:
            out[obs] = tuple((_epoch(s.get("from"), f"threshold_steps.{obs}.from"),
                              None if s.get("value") is None else float(s["value"]))
                             for s in steps)
        except (TypeError, ValueError) as err:
            raise SnapshotError(f"threshold_steps.{obs}: {err}") from None
    return out


def _need(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise SnapshotError(f"{where}{key} is missing")
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise SnapshotError(f"{where}{key} has the wrong type: {type(value).__name__}")
    return value


def _rows(observables: dict, current: dict, obs: str, names: list, n_bins: int, where: str
          ) -> tuple[np.ndarray, np.ndarray]:
    """One observable's series (names x bins) and values now, read from the
    per-name maps `observables` and `current_usage` (`where`: their path)."""
    per_name = _need(observables, obs, dict, f"{where}observables.")
    rows = []
    for u in names:
        values = per_name.get(u)
        if not isinstance(values, list) or len(values) != n_bins:
            raise SnapshotError(f"{where}observables.{obs}.{u} must be a list of {n_bins} numbers")
        rows.append(values)
    try:
        series = np.asarray(rows, dtype=np.float64).reshape(len(names), n_bins)
    except (TypeError, ValueError):
        raise SnapshotError(f"{where}observables.{obs} holds a value that is not a number") from None
    try:
        now = np.asarray([float(current.get(u, {}).get(obs, 0.0)) for u in names])
    except (TypeError, ValueError, AttributeError):
        raise SnapshotError(f"{where}current_usage holds a bad value for {obs}") from None
    return series, now


def _groups_of_doc(doc: Any, n_bins: int) -> dict[str, Grouping]:
    out = {}
    for by, g in doc.items():
        if by not in GROUPINGS or by == "user":
            raise SnapshotError(f"groups.{by} is not a grouping ({', '.join(GROUPINGS[1:])})")
        names = _need(g, "names", list, f"groups.{by}.")
        obs_doc = _need(g, "observables", dict, f"groups.{by}.")
        cur_doc = _need(g, "current_usage", dict, f"groups.{by}.")
        series, cur = {}, {}
        for obs in KEYS:
            series[obs], cur[obs] = _rows(obs_doc, cur_doc, obs, names, n_bins, f"groups.{by}.")
        try:
            h = _history_of_doc(g["history"]) if g.get("history") else None
        except (KeyError, TypeError, ValueError) as err:
            raise SnapshotError(f"groups.{by}.history is malformed ({err})") from None
        out[by] = Grouping(tuple(map(str, names)), series, cur, h)
    return out


def from_dict(d: Any) -> Snapshot:
    """A `Snapshot` from its JSON document; `SnapshotError` names what is wrong."""
    if not isinstance(d, dict):
        raise SnapshotError("a snapshot must be a JSON object")
    version = _need(d, "schema_version", int, "")
    if version not in READABLE_VERSIONS:
        raise SnapshotError(f"schema_version {version!r} is not supported (expected "
                            f"{' or '.join(map(str, READABLE_VERSIONS))})")
    meta = _need(d, "metadata", dict, "")
    time_idxs = _need(d, "time_idxs", list, "")
    users = _need(d, "users", list, "")
    observables = _need(d, "observables", dict, "")
    current = _need(d, "current_usage", dict, "")
    thresholds = _need(d, "thresholds", dict, "")
    bin_seconds = _need(meta, "time_resolution_seconds", int, "metadata.")
    n_bins = len(time_idxs)
    if meta.get("n_bins", n_bins) != n_bins:
        raise SnapshotError(f"metadata.n_bins says {meta['n_bins']!r} but time_idxs has {n_bins}")
    series: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    queued = {o.key for o in QUEUED}
    used = {o.key for o in USED}
    for obs in KEYS:
        if (version == 1 and obs in queued) or (version <= 3 and obs in used):
            # before the queue nothing was queued; before the used series nothing was recorded
            series[obs], cur[obs] = np.zeros((len(users), n_bins)), np.zeros(len(users))
            continue
        series[obs], cur[obs] = _rows(observables, current, obs, users, n_bins, "")
    return Snapshot(
        qos=_need(meta, "qos", str, "metadata."),
        site=str(meta.get("site", "")),
        timezone=str(meta.get("timezone", "UTC")),
        now=_epoch(meta.get("window_end", meta.get("last_updated")), "metadata.window_end"),
        bin_seconds=bin_seconds,
        window_start=_epoch(meta.get("window_start", time_idxs[0] if time_idxs else None),
                            "metadata.window_start"),
        n_bins=n_bins,
        users=tuple(str(u) for u in users),
        series=series,
        current=cur,
        thresholds={k: (None if v is None else float(v)) for k, v in thresholds.items()},
        jobs_counted=int(meta.get("jobs_counted", 0)),
        skipped_lines=int(meta.get("skipped_lines", 0)),
        skipped_line_numbers=tuple(int(x) for x in meta.get("skipped_line_numbers", [])),
        source=str(meta.get("source", "")),
        generator=str(meta.get("generator", "")),
        cluster=str(meta.get("cluster", "")),
        threshold_steps=_steps(d),
        **_queue_parts(d, n_bins),
    )


def _queue_parts(d: Mapping[str, Any], n_bins: int) -> dict[str, Any]:
    """The queue, pressure, limit_now and waits of a version 2 document."""
    out: dict[str, Any] = {}
    try:
        q = d.get("queue")
        if q is not None:
            out["queue"] = QueueState(
                read_at=None if q.get("read_at") is None else _epoch(q["read_at"], "queue.read_at"),
                error=str(q.get("error", "")), skipped_lines=int(q.get("skipped_lines", 0)),
                rows=tuple(QueueRow(user=str(r["user"]), jobs=int(r["jobs"]),
                                    cpus=float(r["cpus"]), gpus=float(r["gpus"]),
                                    mem_gib=float(r["mem_gib"]),
                                    longest_wait=float(r["longest_wait_seconds"]),
                                    reason=str(r["reason"]), reason_words=str(r["reason_words"]),
                                    held=int(r["held"]), reasons=dict(r.get("reasons", {})))
                           for r in q.get("rows", [])))
        pressure = {}
        for key, p in d.get("pressure", {}).items():
            arrays = [np.asarray(p[f], dtype=np.float64) for f in
                      ("at_limit_seconds", "waiting_at_limit_seconds", "peak")]
            if any(a.shape != (n_bins,) for a in arrays):
                raise SnapshotError(f"pressure.{key} must hold {n_bins} numbers per series")
            pressure[key] = Pressure(*arrays)
        out["pressure"] = pressure
        out["limit_now"] = tuple(
            AtLimitNow(key=str(a["key"]), used=float(a["used"]), limit=float(a["limit"]),
                       holders=tuple((str(u), float(x)) for u, x in a["holders"]),
                       waiting_jobs=int(a["waiting_jobs"]),
                       frees_by=None if a.get("frees_by") is None
                       else float(_epoch(a["frees_by"], "limit_now.frees_by")))
            for a in d.get("limit_now", []))
        w = d.get("waits")
        if w:
            days = np.array([_epoch(t, "waits.day_starts") for t in w["day_starts"]], dtype=float)
            cells = [np.asarray(w[f], dtype=np.int64) for f in ("user", "day", "jobs")]
            sums = [np.asarray(w[f], dtype=np.float64) for f in
                    ("wait_seconds", "at_limit_seconds", "seen_limit")]
            hist = [np.asarray(w[f], dtype=np.int64) for f in ("hist_cell", "hist_bin", "hist_count")]
            user, day = cells[0], cells[1]
            if any(len(a) != len(user) for a in (*cells, *sums)) or \
                    any(len(a) != len(hist[0]) for a in hist) or \
                    (len(user) and (user.min() < 0 or user.max() >= len(w["users"])
                                    or day.min() < 0 or day.max() >= len(days))) or \
                    (len(hist[0]) and (hist[0].min() < 0 or hist[0].max() >= len(user))):
                raise SnapshotError("waits: its lists differ in length or point outside")
            out["waits"] = WaitDays(days, tuple(map(str, w["users"])), *cells, *sums, *hist)
        e = d.get("efficiency")
        if e:
            e_days = np.array([_epoch(t, "efficiency.day_starts") for t in e["day_starts"]],
                              dtype=float)
            user, day = (np.asarray(e[f], dtype=np.int64) for f in ("user", "day"))
            totals = {k: np.asarray(e[k], dtype=np.float64) for k in SUMS}
            if any(len(a) != len(user) for a in (day, *totals.values())) or \
                    (len(user) and (user.min() < 0 or user.max() >= len(e["users"])
                                    or day.min() < 0 or day.max() >= max(len(e_days) - 1, 1))):
                raise SnapshotError("efficiency: its lists differ in length or point outside")
            out["efficiency"] = EfficiencyDays(e_days, tuple(map(str, e["users"])), user, day,
                                               totals)
        if d.get("groups"):
            out["groups"] = _groups_of_doc(_need(d, "groups", dict, ""), n_bins)
        h = d.get("history")
        if h:
            try:
                out["history"] = _history_of_doc(h)
            except (KeyError, TypeError, ValueError) as err:
                raise SnapshotError(f"history is malformed ({type(err).__name__}: {err})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        if isinstance(err, SnapshotError):
            raise
        raise SnapshotError(f"the queue part is malformed ({type(err).__name__}: {err})") from None
    return out


def snapshot_path(data_dir: Path, qos: str, cluster: str = "") -> Path:
    """data_<qos>.json (the seed's name); data_<cluster>_<qos>.json when clusters are named."""
    return data_dir / (f"data_{cluster}_{qos}.json" if cluster else f"data_{qos}.json")


def write_snapshot(path: Path, snap: Snapshot, previous: Entry | None = None) -> Entry:
    """Write atomically, unless `previous` (its index entry, collector/checked.py)
    says the file already holds this content; return the file's entry either
    way. ValueError (nothing written) if a value is not finite. orjson writes
    the series straight from numpy: at 500 QoS a cycle makes about 30 million
    numbers, which the json module takes ten times longer for."""
    for obs in KEYS:
        if not (np.isfinite(snap.series[obs]).all() and np.isfinite(snap.current[obs]).all()):
            raise ValueError(f"snapshot {snap.qos}: {obs} holds a value that is not finite")
    body = orjson.dumps(to_dict(snap, arrays=True), option=orjson.OPT_SERIALIZE_NUMPY)
    digest = content_digest(body, _iso(snap.now, ZoneInfo(snap.timezone)))
    if (previous is not None and previous.digest == digest and previous.written <= snap.now
            and previous.describes(path)):
        return dataclasses.replace(previous, checked=snap.now)
    write_atomic(path, lambda fh: fh.write(body))
    return entry_for(path, digest, snap.now)


def snapshot_users(path: Path) -> tuple[str, ...]:
    """A snapshot's users alone (the file parsed, its series not read: the
    export's first look at every QoS, for the colours); SnapshotError names
    the file and the problem."""
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as err:
        raise SnapshotError(f"{path}: cannot read ({err.strerror})") from err
    except (orjson.JSONDecodeError, UnicodeDecodeError) as err:
        raise SnapshotError(f"{path}: not valid JSON ({err})") from err
    users = doc.get("users") if isinstance(doc, dict) else None
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise SnapshotError(f"{path}: users must be a list of names")
    return tuple(users)


def stamped(snap: Snapshot, entry: Entry | None) -> Snapshot:
    """The snapshot as the last cycle that found the same content would have
    written it: its `now` (and the queue's read time, when that was `now`)
    moved to `entry.checked`. Unchanged when the entry is not for this file."""
    if entry is None or entry.written != snap.now or entry.checked <= snap.now:
        return snap
    queue = snap.queue
    if queue is not None and queue.read_at == snap.now:
        queue = dataclasses.replace(queue, read_at=entry.checked)
    return dataclasses.replace(snap, now=entry.checked, queue=queue)


def read_snapshot(path: Path, index: Mapping[str, Entry] | None = None,
                  stamp: bool = True) -> Snapshot:
    """Read a snapshot file; `SnapshotError` names the file and the problem.
    With `stamp`, as of the last cycle that checked it (`stamped`, from
    `index` or the folder's own, collector/checked.py)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SnapshotError(f"{path}: cannot read ({err.strerror})") from err
    try:
        doc = orjson.loads(raw)
    except (orjson.JSONDecodeError, UnicodeDecodeError) as err:
        raise SnapshotError(f"{path}: not valid JSON ({err})") from err
    try:
        snap = from_dict(doc)
    except SnapshotError as err:
        raise SnapshotError(f"{path}: {err}") from err
    if not stamp:
        return snap
    entry = (read_index(path.parent) if index is None else index).get(path.name)
    return stamped(snap, entry if entry is not None and entry.describes(path) else None)
