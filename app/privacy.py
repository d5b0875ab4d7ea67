"""What a public site may show: keyed pseudonyms and the busiest users only (pure).

Pseudonyms are HMAC-SHA256 of the name with a secret key, so they stay the
same across runs (a reader can follow "user-3f2a9c1b" over months) and cannot
be reversed by hashing a list of the cluster's user names without the key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import numpy as np

from collector.observables import KEYS
from collector.palette import OTHERS
from collector.snapshot import Snapshot


class PrivacyError(ValueError):
    """Anonymizing was asked for without a usable key."""


def pseudonym(name: str, key: bytes) -> str:
    return "user-" + hmac.new(key, name.encode("utf-8"), hashlib.sha256).hexdigest()[:10]


def anonymize(snap: Snapshot, key: bytes) -> Snapshot:
    """The same snapshot with every user name replaced by its pseudonym."""
    if len(key) < 16:
        raise PrivacyError("the anonymization key must be at least 16 bytes")
    names = tuple(OTHERS if u == OTHERS else pseudonym(u, key) for u in snap.users)
    return replace(snap, users=names)


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
    return replace(snap, users=users, series=series, current=current)
