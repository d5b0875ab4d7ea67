"""The limit pressure before the frozen boundary, kept between cycles.

The pressure and the waits come from the exact intervals of every record of
the window (collector/pressure.py). Before the store's frozen boundary (the
UTC midnight before the last cycle less the overlap) they change only when a
cold record does (the segments' fingerprint), when a hot record's part
before the boundary does (`frozen_digest`), or when the limits there do; so
a cycle computes the span after the boundary from the hot records alone and
takes the span before it from here. Anything else (the boundary moved: once
a day) and the span is made anew from all records, the cold ones read once.

`pressure-frozen.npz` is only a cache: unreadable or not matching, it is made anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collector.atomic import write_atomic
from collector.efficiency import SUMS, EfficiencyDays
from collector.pressure import Began, Pressure, Span, WaitDays
from collector.store.packed import MappedNpz, pack, unpacked

FROZEN_FILE = "pressure-frozen.npz"
SETTLED_FIELDS = ("day_starts", "user", "day", "jobs", "wait", "at_limit", "seen_limit",
                  "hist_cell", "hist_bin", "hist_count")


@dataclass(frozen=True)
class Frozen:
    """One QoS's span before the boundary and what it was made from."""

    span: Span
    digest: str                                   # of the hot records' part before it
    steps: dict[str, tuple[tuple[int, float | None], ...]]


@dataclass(frozen=True)
class FrozenFile:
    fingerprint: str        # the cold segments it belongs to
    bin_seconds: int
    entries: dict[tuple[str, str], Frozen]


def save_frozen(folder: Path, part: FrozenFile) -> None:
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"fingerprint": part.fingerprint, "bin_seconds": part.bin_seconds,
                            "entries": []}
    for j, ((cluster, qos), f) in enumerate(part.entries.items()):
        sp = f.span
        meta["entries"].append({
            "cluster": cluster, "qos": qos, "start": sp.start, "end": sp.end,
            "horizon": sp.horizon, "settled_users": list(sp.settled.users) if sp.settled else None,
            "digest": f.digest, "keys": list(sp.pressure), "users": list(sp.began.users),
            "steps": {k: [[t, v] for t, v in s] for k, s in f.steps.items()}})
        for k, p in sp.pressure.items():
            arrays[f"{j}_{k}_at"], arrays[f"{j}_{k}_wait"] = p.at_limit, p.waiting_at_limit
            arrays[f"{j}_{k}_peak"] = p.peak
            arrays[f"{j}_{k}_s"], arrays[f"{j}_{k}_e"] = sp.intervals[k]
            arrays[f"{j}_{k}_asks"] = sp.began.asks[k]
        g = sp.began
        arrays[f"{j}_user"], arrays[f"{j}_start"] = g.user, g.start
        arrays[f"{j}_since"], arrays[f"{j}_seen"] = g.since, g.seen_limit
        arrays[f"{j}_at_limit"] = g.at_limit
        if sp.settled is not None:
            for name in SETTLED_FIELDS:
                arrays[f"{j}_settled_{name}"] = getattr(sp.settled, name)
    arrays["meta"] = np.array(json.dumps(meta))

    def write(fh: Any) -> None:
        np.savez(fh, **pack(arrays))  # type: ignore[arg-type]

    write_atomic(folder / FROZEN_FILE, write)


def load_frozen(folder: Path, fingerprint: str, bin_seconds: int) -> FrozenFile:
    """The kept spans if they belong to these segments and bins; else none."""
    empty = FrozenFile(fingerprint, bin_seconds, {})
    try:
        with MappedNpz(folder / FROZEN_FILE) as npz:
            z = unpacked(npz)
            meta = json.loads(str(z["meta"][()]))
            if meta["fingerprint"] != fingerprint or meta["bin_seconds"] != bin_seconds:
                return empty
            entries = {}
            for j, m in enumerate(meta["entries"]):
                keys = m["keys"]
                began = Began(tuple(m["users"]), z[f"{j}_user"], z[f"{j}_start"],
                              z[f"{j}_since"], {k: z[f"{j}_{k}_asks"] for k in keys},
                              z[f"{j}_seen"], z[f"{j}_at_limit"])
                settled = None if m["settled_users"] is None else WaitDays(
                    users=tuple(m["settled_users"]),
                    **{name: z[f"{j}_settled_{name}"] for name in SETTLED_FIELDS})
                span = Span(int(m["start"]), int(m["end"]),
                            {k: Pressure(z[f"{j}_{k}_at"], z[f"{j}_{k}_wait"], z[f"{j}_{k}_peak"])
                             for k in keys},
                            {k: (z[f"{j}_{k}_s"], z[f"{j}_{k}_e"]) for k in keys}, began,
                            settled, float(m["horizon"]))
                steps: dict[str, tuple[tuple[int, float | None], ...]] = {
                    k: tuple((int(t), None if v is None else float(v)) for t, v in s)
                    for k, s in m["steps"].items()}
                entries[(m["cluster"], m["qos"])] = Frozen(span, m["digest"], steps)
    except (OSError, ValueError, KeyError, TypeError):
        return empty   # missing or unreadable: it is only a cache
    return FrozenFile(fingerprint, bin_seconds, entries)



# --- what the cold records used ------------------------------------------------------

EFFICIENCY_FILE = "efficiency-frozen.npz"


def save_frozen_efficiency(folder: Path, key: str,
                           entries: dict[tuple[str, str], EfficiencyDays]) -> None:
    """Each QoS's efficiency sums of the cold records (all ended before the
    frozen boundary), for `key` (the segments, the boundary, the first day)."""
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"key": key, "entries": []}
    for j, ((cluster, qos), e) in enumerate(entries.items()):
        meta["entries"].append({"cluster": cluster, "qos": qos, "users": list(e.users)})
        arrays[f"{j}_days"], arrays[f"{j}_user"], arrays[f"{j}_day"] = e.day_starts, e.user, e.day
        for name, values in e.sums.items():
            arrays[f"{j}_{name}"] = values
    arrays["meta"] = np.array(json.dumps(meta))

    def write(fh: Any) -> None:
        np.savez(fh, **pack(arrays))  # type: ignore[arg-type]

    write_atomic(folder / EFFICIENCY_FILE, write)


def load_frozen_efficiency(folder: Path, key: str) -> dict[tuple[str, str], EfficiencyDays] | None:
    """The kept sums if they were made for `key`; None otherwise (only a cache)."""
    try:
        with MappedNpz(folder / EFFICIENCY_FILE) as npz:
            z = unpacked(npz)
            meta = json.loads(str(z["meta"][()]))
            if meta["key"] != key:
                return None
            return {(m["cluster"], m["qos"]): EfficiencyDays(
                z[f"{j}_days"], tuple(m["users"]), z[f"{j}_user"], z[f"{j}_day"],
                {name: z[f"{j}_{name}"] for name in SUMS}) for j, m in enumerate(meta["entries"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None
