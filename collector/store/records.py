"""The job store's records, pure: keys, merging a cycle's answers, pruning.

One record per job allocation run, keyed like slurmdbd's own job table by
(cluster, JobIDRaw, Submit): a requeued job gets a new Submit, so each run of
it is a record of its own (sacct --duplicates lists them all). A cluster's
records are a `JobTable`; the cluster is the key of the dict that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from collector.jobtable import USAGE_COLUMNS, JobTable, concat
from collector.reasons import bits as reason_bits

DAY = 86400


def record_keys(jobs: JobTable) -> np.ndarray:
    """One uint64 per record: JobIDRaw in the high bits, Submit (+1; 0 when
    unknown) in the low 33 (good until the year 2242)."""
    return keys_of(jobs.job_id, jobs.submit)


def dedupe_last(jobs: JobTable) -> JobTable:
    """One row per record key, the last one seen (later queries know more)."""
    keys = record_keys(jobs)
    _, first_in_reversed = np.unique(keys[::-1], return_index=True)
    if len(first_in_reversed) == len(keys):
        return jobs
    keep = np.sort(len(keys) - 1 - first_in_reversed)
    return jobs.take(keep)


def replaced_by(old: JobTable, new: JobTable) -> np.ndarray:
    """Which rows of `old` have a record in `new` (binary search in the sorted
    new keys: O(old x log new), cheap when `new` is one cycle's answer)."""
    if not len(old) or not len(new):
        return np.zeros(len(old), dtype=bool)
    new_keys = np.sort(record_keys(new))
    old_keys = record_keys(old)
    at = np.minimum(np.searchsorted(new_keys, old_keys), len(new_keys) - 1)
    return new_keys[at] == old_keys


def merge(old: JobTable, new: JobTable) -> JobTable:
    """`old` with every record that `new` has replaced by `new`'s version
    (which keeps every reason the old one was seen waiting on)."""
    new = dedupe_last(new)
    if not len(old):
        return new
    replaced = replaced_by(old, new)
    if not replaced.any():
        return concat([old, new])
    return concat([old.take(~replaced), carry_seen(old.take(replaced), new)])


def carry_seen(old: JobTable, new: JobTable) -> JobTable:
    """`new` with what only the store knows of the `old` version of each
    record: the `reasons_seen` bits ORed in, and the usage its steps gave
    (sacct's allocation lines never carry it) where `new` has not read it."""
    if not len(old) or not len(new):
        return new
    order = np.argsort(record_keys(old))
    old_keys = record_keys(old)[order]
    new_keys = record_keys(new)
    at = np.minimum(np.searchsorted(old_keys, new_keys), len(old_keys) - 1)
    hit = old_keys[at] == new_keys
    if not hit.any():
        return new
    seen = new.reasons_seen.astype(np.int64)
    seen[hit] |= old.reasons_seen[order][at[hit]].astype(np.int64)
    keep_old = hit & np.isnan(new.usage_read)
    where = at[keep_old]
    usage = {c: getattr(new, c).copy() for c in (*USAGE_COLUMNS, "usage_read")}
    for c, values in usage.items():
        values[keep_old] = getattr(old, c)[order][where]
    return replace(new, reasons_seen=seen.astype(np.float64), **usage)


def needs_usage(fresh: JobTable, known: JobTable) -> np.ndarray:
    """The rows of `fresh` that ended and whose steps have not been read, here
    or in the `known` (stored) version of the same record."""
    ended = ~np.isnan(fresh.end) & ~np.isnan(fresh.start) & np.isnan(fresh.usage_read)
    if not ended.any() or not len(known):
        return ended
    read = record_keys(known)[~np.isnan(known.usage_read)]
    return ended & ~np.isin(record_keys(fresh), read)


def with_usage(jobs: JobTable, rows: np.ndarray, answer_keys: np.ndarray,
               usage: dict[str, np.ndarray], at: float) -> JobTable:
    """The records at `rows` (a mask: those whose steps were asked) marked read
    at `at`, with the usage of the records the answer had (`answer_keys`:
    their record_keys, sorted; NaN for the rest: not recorded). Only those
    rows: a requeued job's later record has the same JobIDRaw and may still
    be running."""
    if not rows.any():
        return jobs
    keys = record_keys(jobs)
    pos = np.minimum(np.searchsorted(answer_keys, keys), max(len(answer_keys) - 1, 0))
    found = rows & (answer_keys[pos] == keys) if len(answer_keys) else \
        np.zeros(len(jobs), dtype=bool)
    out = {}
    for c in USAGE_COLUMNS:
        values = getattr(jobs, c).copy()
        values[rows] = np.nan
        values[found] = usage[c][pos[found]]
        out[c] = values
    read = jobs.usage_read.copy()
    read[rows] = at
    return replace(jobs, usage_read=read, **out)


def keys_of(job_id: np.ndarray, submit: np.ndarray) -> np.ndarray:
    """record_keys of (JobIDRaw, Submit) pairs."""
    plus = np.nan_to_num(submit, nan=-1.0).astype(np.int64) + 1
    return (job_id.astype(np.uint64) << np.uint64(33)) | plus.astype(np.uint64)


def observe_reasons(jobs: JobTable, job_ids: np.ndarray, reasons: Sequence[str]) -> JobTable:
    """The records with the reasons squeue gave this cycle for pending jobs
    (JobIDRaw -> reason): each becomes the record's last reason, and its bits
    are added to the ones seen. Records that started are left alone."""
    if not len(jobs) or not len(job_ids):
        return jobs
    order = np.argsort(job_ids, kind="stable")
    ids = np.asarray(job_ids, dtype=np.int64)[order]
    words = [reasons[i] for i in order.tolist()]
    at = np.minimum(np.searchsorted(ids, jobs.job_id), len(ids) - 1)
    hit = (ids[at] == jobs.job_id) & np.isnan(jobs.start)
    if not hit.any():
        return jobs
    names = tuple(sorted(set(jobs.reasons) | set(words)))
    position = {n: i for i, n in enumerate(names)}
    remap = np.array([position[n] for n in jobs.reasons] or [0], dtype=np.int64)
    code = remap[jobs.reason] if len(jobs.reasons) else np.zeros(len(jobs), dtype=np.int64)
    given = np.array([position[w] for w in words], dtype=np.int64)
    given_bits = np.array([reason_bits(w) for w in words], dtype=np.int64)
    code = np.where(hit, given[at], code)
    seen = jobs.reasons_seen.astype(np.int64)
    seen[hit] |= given_bits[at[hit]]
    return replace(jobs, reason=code, reasons=names, reasons_seen=seen.astype(np.float64))


def frozen_boundary(synced_to: int, overlap_seconds: int) -> int:
    """The UTC midnight before the next incremental query's start: records that
    ended before it are never asked for again (open jobs never end before it)."""
    return (synced_to - overlap_seconds) // DAY * DAY


@dataclass(frozen=True)
class Update:
    """A cluster's records after a cycle, and whether the cold part changed."""

    cold: JobTable
    hot: JobTable
    cold_changed: bool


def update(cold: JobTable, hot: JobTable, fresh: JobTable, boundary: int,
           keep_from: int) -> Update:
    """Merge a cycle's answers into a cluster's records (pure): the fresh
    versions replace the old ones wherever they are, records that ended before
    `boundary` move to the cold part, and the cold part is pruned to
    `keep_from` whenever it changes anyway."""
    fresh = dedupe_last(fresh)
    changed = False
    hit = replaced_by(cold, fresh)
    if hit.any():  # only after a change of overlap or a backfill: rare
        cold, changed = cold.take(~hit), True
    hot = merge(hot, fresh)
    ended = ~np.isnan(hot.end) & (hot.end < boundary)
    if ended.any():
        cold, hot, changed = concat([cold, hot.take(ended)]), hot.take(~ended), True
    if changed:
        cold = prune(cold, keep_from)
    return Update(cold=cold, hot=prune(hot, keep_from), cold_changed=changed)


def prune(jobs: JobTable, keep_from: float) -> JobTable:
    """Drop the records that ended before `keep_from` (open ones always stay)."""
    keep = np.isnan(jobs.end) | (jobs.end >= keep_from)
    return jobs if keep.all() else jobs.take(keep)


def open_job_ids(jobs: JobTable) -> np.ndarray:
    """JobIDRaw of the records that had not ended (running or pending), sorted."""
    return np.unique(jobs.job_id[np.isnan(jobs.end)])
