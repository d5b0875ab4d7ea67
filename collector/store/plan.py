"""What to ask sacct this cycle (pure): a full backfill or only what changed."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from collector.store.records import DAY

STORE_VERSION = 6   # 6: Account, Partition; 5: what ended jobs used; 4: the queue


@dataclass(frozen=True)
class StoreState:
    fingerprint: str          # what the store was filled for (clusters, QoS, history kept)
    synced_to: int            # every record active before this (less the overlap) is known
    full_at: int              # when the last full backfill ran
    version: int = STORE_VERSION
    history_from: int = 0     # the records are complete from here (0: as far back as kept)


@dataclass(frozen=True)
class SyncPlan:
    full: bool
    reason: str
    spans: tuple[tuple[int, int], ...]   # [start, end] of each sacct query, epoch s
    keep_from: int                       # records that ended before this are pruned
    history_from: int = 0                # the store is complete from here after the cycle
    older: int = 0                       # the last `older` spans read history not yet kept

    @property
    def start(self) -> int:
        return min(s for s, _ in self.spans)


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
              damaged: str = "", window_from: int | None = None,
              history_days_per_cycle: int = 0) -> SyncPlan:
    """Full backfill or incremental query, and why; then the history.

    A backfill reads the window (from `window_from`) and the store is complete
    from there; each later cycle reads up to `history_days_per_cycle` older
    days, newest first, until the store is complete from `keep_from` (0: all
    at once). So a first run shows the window in a minute and a year of
    history fills in over the next cycles; a wider history later is read the
    same way, without a backfill."""
    reason = ""
    window_from = keep_from if window_from is None else max(keep_from, window_from)
    if force_full:
        reason = "--full asked for"
    elif damaged:
        reason = f"the store was damaged ({damaged})"
    elif state is None:
        reason = "no store yet (first run)"
    elif state.version != STORE_VERSION:
        reason = f"store format {state.version} (this version writes {STORE_VERSION})"
    elif state.fingerprint != fingerprint:
        reason = "the configuration changed (clusters or QoS)"
    elif now < state.synced_to:
        reason = "the clock is before the store's last cycle"
    elif state.synced_to - overlap_seconds < window_from:
        reason = f"the last cycle was {(now - state.synced_to) / DAY:.1f} days ago, beyond the window"
    if reason or state is None:
        start = window_from if history_days_per_cycle else keep_from
        return SyncPlan(True, reason, day_chunks(start, now, chunk_seconds), keep_from,
                        history_from=start)
    start = state.synced_to - overlap_seconds
    spans = day_chunks(start, now, chunk_seconds)
    complete = state.history_from or keep_from
    if complete <= keep_from:
        return SyncPlan(False, "incremental", spans, keep_from, history_from=complete)
    batch = history_days_per_cycle * DAY if history_days_per_cycle else complete - keep_from
    older_from = max(keep_from, complete - batch)
    older = tuple(reversed(day_chunks(older_from, complete, chunk_seconds)))
    return SyncPlan(False, "incremental", (*spans, *older), keep_from,
                    history_from=older_from, older=len(older))


def fingerprint(clusters: Sequence[str], qos_names: Sequence[str]) -> str:
    """What a store's records are for: a change asks for a backfill. (The
    history kept is not in it: a longer one is read in, a shorter one pruned.)"""
    return json.dumps({"clusters": sorted(clusters), "qos": sorted(qos_names)}, sort_keys=True)
