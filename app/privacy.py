"""What a public site may show: keyed pseudonyms and the busiest users only (pure).

Pseudonyms are HMAC-SHA256 of the name with a secret key, so they stay the
same across runs (a reader can follow "user-3f2a9c1b" over months) and cannot
be reversed by hashing a list of the cluster's user names without the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from collector.history import History
from collector.observables import KEYS
from collector.palette import OTHERS
from collector.snapshot import Snapshot


class PrivacyError(ValueError):
    """Anonymizing was asked for without a usable key."""


def pseudonym(name: str, key: bytes) -> str:
    return "user-" + hmac.new(key, name.encode("utf-8"), hashlib.sha256).hexdigest()[:10]


def shown_name(user: str, key: bytes) -> str:
    """A user's name in an anonymised copy (the folded "others" stays)."""
    return OTHERS if user == OTHERS else pseudonym(user, key)


def _renamed(snap: Snapshot, rename: Callable[[str], str]) -> Snapshot:
    """Every user name of the snapshot through `rename`: the charts' users and
    those of the queue, the holders of a limit, the waits and the efficiency sums."""
    queue = snap.queue
    if queue is not None:
        queue = replace(queue, rows=tuple(replace(r, user=rename(r.user)) for r in queue.rows))
    limit_now = tuple(replace(a, holders=tuple((rename(u), x) for u, x in a.holders))
                      for a in snap.limit_now)
    waits = replace(snap.waits, users=tuple(rename(u) for u in snap.waits.users))
    efficiency = replace(snap.efficiency, users=tuple(rename(u) for u in snap.efficiency.users))
    history = _renamed_history(snap.history, rename) if snap.history is not None else None
    return replace(snap, users=tuple(rename(u) for u in snap.users), queue=queue,
                   limit_now=limit_now, waits=waits, efficiency=efficiency, history=history)


def _renamed_history(h: History, rename: Callable[[str], str]) -> History:
    """The daily history under the new names; users that now share a name
    (folded into 'others') are summed into one row."""
    names = [rename(u) for u in h.users]
    users = tuple(dict.fromkeys(names))
    rows = np.array([users.index(n) for n in names], dtype=np.int64)
    seconds = np.zeros((h.seconds.shape[0], len(users), h.n_days))
    started = np.zeros((len(users), h.n_days))
    for i, r in enumerate(rows.tolist()):
        seconds[:, r] += h.seconds[:, i]
        started[r] += h.started[i]
    return History(h.first, users, seconds, started, h.complete_from)


def anonymize(snap: Snapshot, key: bytes) -> Snapshot:
    """The same snapshot with every user name replaced by its pseudonym, and
    every account name too (a site may give people accounts of their own;
    partitions name hardware and stay)."""
    if len(key) < 16:
        raise PrivacyError("the anonymization key must be at least 16 bytes")
    renamed = _renamed(snap, lambda u: shown_name(u, key))
    accounts = snap.groups.get("account")
    if accounts is None:
        return renamed

    def account(a: str) -> str:
        return a if not a else "account-" + pseudonym(a, key).removeprefix("user-")

    groups = {**snap.groups, "account": replace(
        accounts, names=tuple(account(a) for a in accounts.names),
        history=_renamed_history(accounts.history, account) if accounts.history else None)}
    return replace(renamed, groups=groups)


def top_users(snap: Snapshot, n: int) -> Snapshot:
    """Keep the `n` users with the most CPU-time in the window; fold the rest into 'others'."""
    if n <= 0 or len(snap.users) <= n:
        return snap
    cpu_time = snap.series["NCPUS"].sum(axis=1)
    order = np.argsort(-cpu_time, kind="stable")
    keep, rest = np.sort(order[:n]), order[n:]
    users = (*(snap.users[i] for i in keep), OTHERS)
    series = {o: np.vstack([snap.series[o][keep], snap.series[o][rest].sum(axis=0)])
              for o in KEYS}
    current = {o: np.append(snap.current[o][keep], snap.current[o][rest].sum())
               for o in KEYS}
    kept = set(users)
    # The queue, the holders and the waits name no one beyond the users kept.
    folded = _renamed(snap, lambda u: u if u in kept else OTHERS)
    return replace(folded, users=users, series=series, current=current)
