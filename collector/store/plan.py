"""What to ask sacct this cycle (pure): a full backfill or only what changed."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from collector.store.records import DAY

STORE_VERSION = 5   # 5: what ended jobs used (TotalCPU, peak RSS, GPU); 4: the queue


@dataclass(frozen=True)
class StoreState:
    fingerprint: str          # what the store was filled for (clusters, QoS, history kept)
    synced_to: int            # every record active before this (less the overlap) is known
    full_at: int              # when the last full backfill ran
    version: int = STORE_VERSION


@dataclass(frozen=True)
class SyncPlan:
    full: bool
    reason: str
    spans: tuple[tuple[int, int], ...]   # [start, end] of each sacct query, epoch s
    keep_from: int                       # records that ended before this are pruned

    @property
    def start(self) -> int:
        return self.spans[0][0]


def day_chunks(start: int, end: int, chunk_seconds: int = DAY) -> tuple[tuple[int, int], ...]:
    """[start, end] cut into spans of at most `chunk_seconds`, on UTC day
    boundaries when the chunk is a day (so a rerun asks the same questions)."""
    if end <= start:
        return ((start, end),)
    cuts = list(range((start // chunk_seconds + 1) * chunk_seconds, end, chunk_seconds))
    edges = [start, *cuts, end]
    return tuple(itertools.pairwise(edges))


def plan_sync(state: StoreState | None, fingerprint: str, now: int, keep_from: int,
              overlap_seconds: int, chunk_seconds: int = DAY, force_full: bool = False,
              damaged: str = "") -> SyncPlan:
    """Full backfill or incremental query, and why."""
    reason = ""
    if force_full:
        reason = "--full asked for"
    elif damaged:
        reason = f"the store was damaged ({damaged})"
    elif state is None:
        reason = "no store yet (first run)"
    elif state.version != STORE_VERSION:
        reason = f"store format {state.version} (this version writes {STORE_VERSION})"
    elif state.fingerprint != fingerprint:
        reason = "the configuration changed (clusters, QoS or history kept)"
    elif now < state.synced_to:
        reason = "the clock is before the store's last cycle"
    elif state.synced_to - overlap_seconds < keep_from:
        reason = f"the last cycle was {(now - state.synced_to) / DAY:.1f} days ago, beyond the window"
    if reason or state is None:
        return SyncPlan(True, reason, day_chunks(keep_from, now, chunk_seconds), keep_from)
    start = state.synced_to - overlap_seconds
    return SyncPlan(False, "incremental", day_chunks(start, now, chunk_seconds), keep_from)


def fingerprint(clusters: Sequence[str], qos_names: Sequence[str], keep_days: int) -> str:
    return json.dumps({"clusters": sorted(clusters), "qos": sorted(qos_names),
                       "keep_days": keep_days}, sort_keys=True)
