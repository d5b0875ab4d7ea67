"""The daily history of the cold segments, kept beside the store.

A cold segment never changes once written (a rare replacement rewrites it
under a new CRC), so its records' daily history is binned once, when a cycle
first meets the segment, and kept in `history-days.npz`, keyed by the
segment's name and CRC and the site's time zone. A cycle then adds the kept
histories of every segment to the hot records' own: O(hot + new segments),
never a read of every record. The file is only a cache: a missing, unreadable
or mismatched one is made anew from the segments.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from collector.atomic import write_atomic
from collector.history import History, history_grid, history_of, local_date
from collector.jobtable import JobTable
from collector.store.files import State, cold_segments, read_part
from collector.store.packed import MappedNpz, pack, unpacked

DAYS_FILE = "history-days.npz"
Key = tuple[str, str]   # (cluster, qos)


def _load(folder: Path, tz: str) -> dict[str, tuple[int, dict[Key, History]]]:
    """name -> (crc, histories) of the kept segments (empty if unusable)."""
    try:
        with MappedNpz(folder / DAYS_FILE) as npz:
            z = unpacked(npz)
            meta = json.loads(str(z["meta"][()]))
            if meta.get("tz") != tz:
                return {}
            out: dict[str, tuple[int, dict[Key, History]]] = {}
            for s in meta["segments"]:
                parts = {}
                for p in s["parts"]:
                    j = p["array"]
                    parts[(p["cluster"], p["qos"])] = History(
                        date.fromisoformat(p["first"]), tuple(p["users"]), z[f"seconds_{j}"],
                        z[f"started_{j}"])
                out[s["name"]] = (int(s["crc"]), parts)
            return out
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _save(folder: Path, tz: str, kept: dict[str, tuple[int, dict[Key, History]]]) -> None:
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"tz": tz, "segments": []}
    j = 0
    for name, (crc, parts) in kept.items():
        entry: dict[str, Any] = {"name": name, "crc": crc, "parts": []}
        for (cluster, qos), h in parts.items():
            entry["parts"].append({"cluster": cluster, "qos": qos, "first": h.first.isoformat(),
                                   "users": list(h.users), "array": j})
            arrays[f"seconds_{j}"], arrays[f"started_{j}"] = h.seconds, h.started
            j += 1
        meta["segments"].append(entry)
    arrays["meta"] = np.array(json.dumps(meta))

    def write(fh: Any) -> None:
        np.savez(fh, **pack(arrays))  # type: ignore[arg-type]

    write_atomic(folder / DAYS_FILE, write)


def _segment_history(jobs: dict[str, JobTable], first: date, tz: str) -> dict[Key, History]:
    """One segment's records binned per QoS, over the days they touch (from
    the earliest Submit, where any wait can begin, or `first` if later, to the
    day the last job ended): a day's segment keeps a few days, not the whole
    history, so the kept file grows with the jobs, not segments x history."""
    out: dict[Key, History] = {}
    for cluster, table in jobs.items():
        ends = table.end[~np.isnan(table.end)]
        submits = table.submit[~np.isnan(table.submit)]
        if not len(ends):
            continue
        last = local_date(float(ends.max()), tz)
        since = max(first, local_date(float(submits.min()), tz)) if len(submits) else first
        n_days = max((last - since).days + 1, 1)
        grid_first, grid = history_grid(int(ends.max()), n_days, tz)
        for qos, part in table.by_qos().items():
            h = history_of(part.combined(), grid_first, grid)   # folded per grouping later
            if h.users:
                out[(cluster, qos)] = h
    return out


def segment_histories(folder: Path, raw: State | None, first: date, tz: str
                      ) -> dict[Key, list[History]]:
    """The kept daily history of every cold segment, per (cluster, QoS); the
    segments not kept yet are read and binned and the cache written.
    Segments that left the store are forgotten."""
    if raw is None:
        return {}
    kept = _load(folder, tz)
    fresh: dict[str, tuple[int, dict[Key, History]]] = {}
    changed = False
    for name in cold_segments(raw):
        crc = int(raw["files"][name]["crc32"])
        hit = kept.get(name)
        if hit is not None and hit[0] == crc:
            fresh[name] = hit
            continue
        fresh[name] = (crc, _segment_history(read_part(folder, raw, name), first, tz))
        changed = True
    if changed or set(kept) != set(fresh):
        _save(folder, tz, fresh)
    out: dict[Key, list[History]] = {}
    for _, parts in fresh.values():
        for key, h in parts.items():
            out.setdefault(key, []).append(h)
    return out


__all__ = ["DAYS_FILE", "segment_histories"]
