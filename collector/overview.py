"""One line per QoS, for the page that finds a group among hundreds.

What each QoS holds now and over the last 7 days against each limit, what
waits for it, the hours it spent at a limit and the users the efficiency
rules flag: the overview table's row. `collect` makes a row from every
snapshot it makes (every QoS, every cycle: a snapshot not written again
still has a row as of this cycle) and writes them all to
`data_dir/overview.json`, so the page and the export read one small file,
never hundreds of snapshots.

`pressure_over` is the limit pressure over a span, the page's pressure
table's numbers as well (app/queue_view.py formats them). Pure but for the
file's read and write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from collector.atomic import write_atomic
from collector.config_model import EfficiencyConfig
from collector.efficiency import efficiency_rows
from collector.observables import LIMITED
from collector.snapshot import Snapshot

OVERVIEW_FILE = "overview.json"
OVERVIEW_SECONDS = 7 * 86400   # the page's 7d range
log = logging.getLogger("librarian.collect")


@dataclass(frozen=True)
class Span:
    """One limited resource's pressure over a span: hours at the limit, at it
    with jobs waiting for it, mean and peak share of the limit in use (%),
    and the unused capacity (limit x hours - used resource-hours)."""

    key: str
    limit: float
    at_limit_h: float
    waiting_h: float
    mean_share: float | None
    peak_share: float
    unused: float


def pressure_over(snap: Snapshot, start: int, end: int) -> list[Span]:
    """Per limited resource with a limit in [start, end): its pressure (the
    bins' exact seconds at the limit, counted for the part of each bin inside)."""
    seconds = snap.overlap(start, end)
    lengths = np.minimum(snap.bin_starts() + snap.bin_seconds, snap.now) - snap.bin_starts()
    part = np.divide(seconds, lengths, out=np.zeros(len(seconds)), where=lengths > 0)
    out = []
    for key, p in snap.pressure.items():
        limit = snap.limit_per_bin(key)
        has = ~np.isnan(limit) & (limit > 0) & (seconds > 0)
        if not has.any():
            continue
        used = snap.series[key].sum(axis=0)
        capacity = float((limit[has] * seconds[has]).sum())
        used_s = float((used[has] * seconds[has]).sum())
        out.append(Span(
            key=key, limit=float(limit[has][-1]),
            at_limit_h=float((p.at_limit * part).sum()) / 3600,
            waiting_h=float((p.waiting_at_limit * part).sum()) / 3600,
            mean_share=100 * used_s / capacity if capacity else None,
            peak_share=100 * float((p.peak[has] / limit[has]).max()),
            unused=max(capacity - used_s, 0.0) / 3600))
    return out


@dataclass(frozen=True)
class Resource:
    """One limited resource of a QoS in the overview."""

    key: str                   # NCPUS, NGPUS, MEMORY
    now: float                 # held by the jobs running now
    limit: float | None        # in force now (None: no limit)
    share_now: float | None    # % of the limit held now
    share_7d: float | None     # mean % of the limit in use over the last 7 days
    at_limit_h: float          # hours at the limit in the last 7 days
    queued: float              # asked for by the jobs waiting now


@dataclass(frozen=True)
class OverviewRow:
    key: str                   # the panel (qos, or qos@cluster)
    label: str
    now: int                   # the snapshot's time
    users: int                 # users with jobs in the last 7 days
    running: int               # jobs running now
    pending: int               # jobs waiting for resources now
    held: int                  # held, future begin or dependency
    queue_known: bool          # squeue answered at the last read
    resources: tuple[Resource, ...]
    flagged: int               # users the efficiency rules flag over the last 7 days
    flags: dict[str, int]      # flag -> users flagged so

    def resource(self, key: str) -> Resource | None:
        return next((r for r in self.resources if r.key == key), None)

    @property
    def at_limit_h(self) -> float:
        """The most hours any one resource spent at its limit (7 days)."""
        return max((r.at_limit_h for r in self.resources), default=0.0)


def _share(value: float, limit: float | None) -> float | None:
    return 100 * value / limit if limit else None


def overview_row(snap: Snapshot, key: str, label: str, rules: EfficiencyConfig) -> OverviewRow:
    """The row of one QoS as of its snapshot's time (pure)."""
    start = max(snap.window_start, snap.now - OVERVIEW_SECONDS)
    spans = {s.key: s for s in pressure_over(snap, start, snap.now)}
    seconds = snap.overlap(start, snap.now)
    rows = snap.queue.rows if snap.queue is not None else ()
    queued = {"NCPUS": sum(r.cpus for r in rows), "NGPUS": sum(r.gpus for r in rows),
              "MEMORY": sum(r.mem_gib for r in rows)}
    resources = []
    for o in LIMITED:
        now = float(snap.current[o.key].sum()) if len(snap.users) else 0.0
        limit = snap.thresholds.get(o.key)
        s = spans.get(o.key)
        resources.append(Resource(
            key=o.key, now=now, limit=limit, share_now=_share(now, limit),
            share_7d=s.mean_share if s is not None else None,
            at_limit_h=s.at_limit_h if s is not None else 0.0, queued=float(queued.get(o.key, 0))))
    active = (snap.series["NJOBS"] * seconds).sum(axis=1) > 0 if len(snap.users) else []
    flagged = [r for r in efficiency_rows(snap.efficiency, start, snap.now, rules) if r.flags]
    flags: dict[str, int] = {}
    for r in flagged:
        for f in r.flags:
            flags[f] = flags.get(f, 0) + 1
    return OverviewRow(
        key=key, label=label, now=snap.now, users=int(np.count_nonzero(active)),
        running=round(float(snap.current["NJOBS"].sum())) if len(snap.users) else 0,
        pending=sum(r.jobs for r in rows), held=sum(r.held for r in rows),
        queue_known=snap.queue is not None and snap.queue.known,
        resources=tuple(resources), flagged=len(flagged), flags=flags)


def write_overview(data_dir: Path, rows: Mapping[str, OverviewRow]) -> None:
    body = orjson.dumps({"version": 1, "rows": [asdict(r) for r in rows.values()]})
    write_atomic(data_dir / OVERVIEW_FILE, lambda fh: fh.write(body))


def _row_of(d: Mapping[str, Any]) -> OverviewRow:
    return OverviewRow(**{**d, "resources": tuple(Resource(**r) for r in d["resources"])})


def read_overview(data_dir: Path) -> dict[str, OverviewRow]:
    """The rows by panel key; {} when the file is missing or unreadable (logged)."""
    path = data_dir / OVERVIEW_FILE
    try:
        doc = orjson.loads(path.read_bytes())
        return {r.key: r for r in map(_row_of, doc["rows"])}
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as err:
        log.warning("%s: unreadable (%s); the next cycle writes it again", path, err)
        return {}
