"""The cold records binned once: resource-seconds per user on absolute bins.

A cycle bins only the hot records and adds a slice of these sums; the day's
move adds the moved records' sums; an answer that replaces a cold record
subtracts the old version. Sums of resource-seconds add and subtract exactly
(to float rounding); averaging happens once, at the end (`usage_of`). Each
QoS's sums hold its own users only, so their size grows with the jobs and
each QoS's users, not with QoS x every user of the site.

`cold-sums.npz` is only a cache of the segments: tied to their names and CRCs
and the bin size, and made anew when it does not match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collector.atomic import write_atomic
from collector.binning import Binned, Window, bin_seconds
from collector.jobtable import JobTable
from collector.observables import OBSERVABLES
from collector.store.packed import MappedNpz
from collector.store.records import record_keys

COLD_SUMS_FILE = "cold-sums.npz"
_N_OBS = len(OBSERVABLES)


@dataclass(frozen=True)
class QosSums:
    """One QoS's sums, kept sparse: a QoS's (user, account, partition) rows
    are zero in most bins (5% of the cells hold a value in the 500-QoS
    benchmark), so the nonzero cells alone are kept, by flat position in the
    dense (observables x users x bins) array; `dense()` makes that array when
    a cycle needs it, one QoS at a time."""
    users: tuple[str, ...]
    n_bins: int             # bins from ColdSums.start
    index: np.ndarray       # flat positions of the nonzero cells, ascending
    values: np.ndarray      # their resource-seconds
    ends: np.ndarray        # sorted End of the jobs that ran (for the job count)

    @classmethod
    def of(cls, users: tuple[str, ...], seconds: np.ndarray, ends: np.ndarray) -> QosSums:
        flat = seconds.reshape(-1)
        index = np.flatnonzero(flat)
        kind = np.int32 if flat.size < 2**31 else np.int64
        return cls(users, seconds.shape[2], index.astype(kind), flat[index], ends)

    def dense(self) -> np.ndarray:
        out = np.zeros(_N_OBS * len(self.users) * self.n_bins)
        out[self.index] = self.values
        return out.reshape(_N_OBS, len(self.users), self.n_bins)


def _ran_ends(jobs: JobTable) -> np.ndarray:
    """End of each job that ran (started, for some time): what the job count counts."""
    return jobs.end[~np.isnan(jobs.start) & (jobs.end > jobs.start)]


@dataclass(frozen=True)
class ColdSums:
    """The cold records binned on absolute bins [start, end), with their keys
    and the segment holding each: valid for one set of segments (their names
    and CRCs) and one bin size."""

    fingerprint: str
    bin_seconds: int
    start: int
    end: int
    segments: tuple[str, ...]
    keys: dict[str, np.ndarray]                 # cluster -> sorted record keys
    key_segment: dict[str, np.ndarray]          # cluster -> index into `segments`, per key
    sums: dict[tuple[str, str], QosSums]        # (cluster, qos) -> sums

    def hit(self, cluster: str, jobs: JobTable) -> np.ndarray:
        """Positions in `keys[cluster]` of the cold records `jobs` replaces."""
        keys = self.keys.get(cluster)
        if keys is None or not len(keys) or not len(jobs):
            return np.zeros(0, dtype=np.int64)
        probe = record_keys(jobs)
        at = np.minimum(np.searchsorted(keys, probe), len(keys) - 1)
        return np.unique(at[keys[at] == probe])

    def segments_hit(self, fresh: dict[str, JobTable]) -> list[str]:
        """The segments holding a record that `fresh` answers replace."""
        return sorted({self.segments[int(g)] for cl, jobs in fresh.items()
                       for g in self.key_segment.get(cl, np.zeros(0, np.int64))[
                           self.hit(cl, jobs)]})

    def binned(self, cluster: str, qos: str, window: Window) -> Binned:
        """The cold part's sums over `window` (cold jobs all ended before now)."""
        part = self.sums.get((cluster, qos))
        if part is None:
            return Binned((), np.zeros((_N_OBS, 0, window.n_bins)), np.zeros((_N_OBS, 0)), 0)
        b = self.bin_seconds
        # Window bin 0 in the sums' bins (>= 0: JobStore.advance remakes sums
        # that start after the window, Cycle.sums_from).
        offset = (window.start - self.start) // b
        seconds = np.zeros((_N_OBS, len(part.users), window.n_bins))
        # The nonzero cells inside the window, put straight in place (making
        # the dense sums first and copying the window out cost twice as much).
        row, k = np.divmod(part.index.astype(np.int64), part.n_bins)
        k -= offset
        inside = (k >= 0) & (k < window.n_bins)
        seconds.reshape(-1)[row[inside] * window.n_bins + k[inside]] = part.values[inside]
        counted = len(part.ends) - int(np.searchsorted(part.ends, window.start, side="right"))
        return Binned(part.users, seconds, np.zeros((_N_OBS, len(part.users))), counted)

    def updated(self, fingerprint: str, segments: tuple[str, ...], start: int, end: int,
                add: dict[str, JobTable], add_segment: str,
                remove: dict[str, JobTable]) -> ColdSums:
        """The sums after records were added (as segment `add_segment`) and
        removed, segments dropped (those not in `segments`), over [start, end)
        (pure: only the changed records are binned, each QoS's on its own)."""
        b = self.bin_seconds
        n_bins = max(1, (end - start) // b)
        window = Window(start=start, now=start + n_bins * b, bin_seconds=b, n_bins=n_bins)
        keys, key_segment = self._keys_after(segments, add, add_segment, remove)
        added = {cl: t.by_qos() for cl, t in add.items()}
        removed = {cl: t.by_qos() for cl, t in remove.items()}
        empty = JobTable.empty()
        first = (start - self.start) // b   # < 0: a longer history is being read in
        sums = {}
        for cluster, qos in set(self.sums) | {(c, q) for c, d in added.items() for q in d}:
            old = self.sums.get((cluster, qos))
            plus_jobs = added.get(cluster, {}).get(qos, empty)
            minus_jobs = removed.get(cluster, {}).get(qos, empty)
            # Per (user, account, partition): each grouping is a fold of these.
            plus = bin_seconds(plus_jobs.combined(), window)
            minus = bin_seconds(minus_jobs.combined(), window)
            users = tuple(sorted(set(old.users if old else ()) | set(plus.users)
                                 | set(minus.users)))
            pos = {u: i for i, u in enumerate(users)}
            seconds = np.zeros((_N_OBS, len(users), n_bins))
            if old is not None and len(old.users):
                src, dst = max(first, 0), max(-first, 0)
                n = min(old.n_bins - src, n_bins - dst)
                if n > 0:
                    rows = np.array([pos[u] for u in old.users])
                    seconds[:, rows, dst:dst + n] = old.dense()[:, :, src:src + n]
            for part, sign in ((plus, 1.0), (minus, -1.0)):
                if part.users:
                    rows = np.array([pos[u] for u in part.users])
                    seconds[:, rows] += sign * part.seconds
            ends = old.ends if old is not None else np.zeros(0)
            ends = np.sort(np.concatenate([ends[ends >= start], _ran_ends(plus_jobs)]))
            for e in _ran_ends(minus_jobs):
                i = int(np.searchsorted(ends, e))
                if i < len(ends) and ends[i] == e:
                    ends = np.delete(ends, i)
            sums[(cluster, qos)] = QosSums.of(users, seconds, ends)
        return ColdSums(fingerprint, b, start, window.now, segments, keys, key_segment, sums)

    def _keys_after(self, segments: tuple[str, ...], add: dict[str, JobTable],
                    add_segment: str, remove: dict[str, JobTable]
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The sorted keys and their segments once `add` is in and `remove`
        and the dropped segments are out (inserted in order: no sort of all)."""
        seg_index = {name: i for i, name in enumerate(segments)}
        remap = np.array([seg_index.get(name, -1) for name in self.segments] or [-1],
                         dtype=np.int64)
        empty = JobTable.empty()
        keys, key_segment = {}, {}
        for cluster in set(self.keys) | set(add):
            k = self.keys.get(cluster, np.zeros(0, np.uint64))
            g = remap[self.key_segment[cluster]] if cluster in self.keys else \
                np.zeros(0, np.int64)
            keep = g >= 0
            keep[self.hit(cluster, remove.get(cluster, empty))] = False
            if not keep.all():
                k, g = k[keep], g[keep]
            new_k = record_keys(add.get(cluster, empty))
            if len(new_k):
                new_k = np.sort(new_k)
                at = np.searchsorted(k, new_k)
                k = np.insert(k, at, new_k)
                g = np.insert(g, at, seg_index.get(add_segment, -1))
            keys[cluster], key_segment[cluster] = k, g
        return keys, key_segment


def cold_sums(cold: dict[str, JobTable], fingerprint: str, segment: str, bin_seconds_: int,
              start: int, end: int) -> ColdSums:
    """Bin the cold records (all in one segment) over [start, end), both on
    bin boundaries (pure)."""
    empty = ColdSums(fingerprint, bin_seconds_, start, start, (), {}, {}, {})
    return empty.updated(fingerprint, (segment,), start, end, cold, segment, {})


def save_cold_sums(folder: Path, part: ColdSums) -> None:
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"fingerprint": part.fingerprint, "bin_seconds": part.bin_seconds,
                            "start": part.start, "end": part.end,
                            "segments": list(part.segments), "clusters": list(part.keys),
                            "sums": []}
    for i, cluster in enumerate(part.keys):
        arrays[f"keys_{i}"] = part.keys[cluster]
        arrays[f"segment_{i}"] = part.key_segment[cluster].astype(np.int32)
    # All QoS in four arrays (one npz member costs ~0.4 ms to read: 500 QoS
    # in members of their own took 8.6 s); each QoS's slice is in `meta`.
    parts = list(part.sums.items())
    for (cluster, qos), q in parts:
        meta["sums"].append({"cluster": cluster, "qos": qos, "users": list(q.users),
                             "n_bins": q.n_bins, "cells": len(q.index), "ends": len(q.ends)})
    wide = any(q.index.dtype == np.int64 for _, q in parts)
    arrays["index"] = np.concatenate([q.index for _, q in parts] or [np.zeros(0)]).astype(
        np.int64 if wide else np.int32)
    arrays["values"] = np.concatenate([q.values for _, q in parts] or [np.zeros(0)])
    arrays["ends"] = np.concatenate([q.ends for _, q in parts] or [np.zeros(0)])
    arrays["meta"] = np.array(json.dumps(meta))

    def write(fh: Any) -> None:
        np.savez(fh, **arrays)

    write_atomic(folder / COLD_SUMS_FILE, write)


def load_cold_sums(folder: Path, fingerprint: str, bin_seconds_: int) -> ColdSums | None:
    """The sums if they belong to these segments and bin size; else None (remade)."""
    try:
        with MappedNpz(folder / COLD_SUMS_FILE) as z:
            meta = json.loads(str(z["meta"][()]))
            if meta["fingerprint"] != fingerprint or meta["bin_seconds"] != bin_seconds_:
                return None
            keys = {c: z[f"keys_{i}"] for i, c in enumerate(meta["clusters"])}
            key_segment = {c: z[f"segment_{i}"].astype(np.int64)
                           for i, c in enumerate(meta["clusters"])}
            index, values, ends = z["index"], z["values"], z["ends"]
            cells = np.concatenate(([0], np.cumsum([m["cells"] for m in meta["sums"]])))
            n_ends = np.concatenate(([0], np.cumsum([m["ends"] for m in meta["sums"]])))
            if cells[-1] != len(index) or cells[-1] != len(values) or n_ends[-1] != len(ends):
                return None
            sums = {(m["cluster"], m["qos"]): QosSums(
                        tuple(m["users"]), int(m["n_bins"]), index[cells[j]:cells[j + 1]],
                        values[cells[j]:cells[j + 1]], ends[n_ends[j]:n_ends[j + 1]])
                    for j, m in enumerate(meta["sums"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: it is only a cache of the segments
    return ColdSums(fingerprint, bin_seconds_, int(meta["start"]), int(meta["end"]),
                    tuple(meta["segments"]), keys, key_segment, sums)
