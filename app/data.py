"""The only reader of snapshot files in the app, through flask-caching.

A snapshot is cached under a key made of its path, modification time and
size (and the cycle that last found it current: collector/checked.py),
so a new snapshot is read on the first request after it lands, and
every worker (or host, with the Redis backend) sees it within one refresh.
A file that is missing, unreadable or half-written gives a `Loaded` with an
error message for that QoS alone, and the log names the file.

In front of the shared cache each worker keeps the last few snapshots it
used, under the same keys: a key names one version of one file, so the memo
can never be stale, and with Redis a worker fetches and unpickles a snapshot
once per version instead of on every request (measured: range changes at
4 workers went from 66 to 86 req/s, the same as the per-worker cache).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask_caching import Cache

from app.figures import unreadable_message
from collector.checked import INDEX, Entry, read_index
from collector.config import Config
from collector.overview import OVERVIEW_FILE, OverviewRow, read_overview
from collector.palette import assign_colors
from collector.snapshot import Snapshot, SnapshotError, read_snapshot, snapshot_path

log = logging.getLogger("librarian.app")
CACHE_SECONDS = 3600
MEMO_SIZE = 16  # snapshots kept in each worker (a few per tab: old versions age out)


@dataclass(frozen=True)
class Loaded:
    qos: str
    snapshot: Snapshot | None
    error: str | None
    version: str  # changes whenever the file does


def cache_config(config: Config) -> dict[str, object]:
    """flask-caching settings for the configured backend."""
    app = config.app
    if app.cache == "redis":
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": app.redis_url,
                "CACHE_KEY_PREFIX": "librarian:", "CACHE_DEFAULT_TIMEOUT": CACHE_SECONDS}
    if app.cache == "filesystem":
        folder = app.cache_dir or config.site.data_dir / ".cache"
        return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(folder),
                "CACHE_DEFAULT_TIMEOUT": CACHE_SECONDS, "CACHE_THRESHOLD": 64}
    return {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": CACHE_SECONDS,
            "CACHE_THRESHOLD": 64}


class SnapshotStore:
    def __init__(self, config: Config, cache: Cache) -> None:
        self.data_dir = config.site.data_dir
        # Tabs by key: the QoS name, or qos@cluster when several clusters are collected.
        self.panels = {p.key: p for p in config.panels}
        self.qos_names = tuple(self.panels)
        self.cache = cache
        self._memo: dict[str, Snapshot] = {}
        self._colors: tuple[tuple[str, ...], dict[str, str]] | None = None
        self._files: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}   # _small's

    def path(self, qos: str) -> Path:
        panel = self.panels[qos]  # KeyError: never build a path from an unknown name
        return snapshot_path(self.data_dir, panel.qos, panel.file_cluster)

    def version(self, qos: str) -> str:
        """Cheap: a stat (and the index, read again only when it changed).
        Changes when the collector replaces the file, and when a cycle found
        its content unchanged (collector/checked.py: the page's time moves on)."""
        path = self.path(qos)
        try:
            st = os.stat(path)
        except OSError:
            return "missing"
        entry = self._index().get(path.name)
        checked = entry.checked if entry is not None and entry.describes(path) else 0
        return f"{st.st_mtime_ns}-{st.st_size}-{checked}"

    def overview(self) -> dict[str, OverviewRow]:
        """The overview's rows (collector/overview.py), read again only when the
        file changed (one stat)."""
        return self._small(OVERVIEW_FILE, read_overview)

    def _index(self) -> dict[str, Entry]:
        return self._small(INDEX, read_index)

    def _small(self, name: str, read: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """A small file of the data folder, as `read` makes it, read again only
        when its time or size changed; {} while it is missing."""
        try:
            st = os.stat(self.data_dir / name)
        except OSError:
            return {}
        key = (st.st_mtime_ns, st.st_size)
        held = self._files.get(name)
        if held is None or held[0] != key:
            held = self._files[name] = (key, read(self.data_dir))
        return held[1]

    def load(self, qos: str) -> Loaded:
        path = self.path(qos)
        version = self.version(qos)
        if version == "missing":
            log.warning("no snapshot for QoS %s at %s", qos, path)
            return Loaded(qos, None, f"No data yet for {qos}: {path.name} is missing "
                                     "(has the collector run?).", version)
        key = f"snapshot:{path}:{version}"
        snap = self._memo.get(key)
        if snap is None:
            snap = self.cache.get(key)
        if snap is None:
            try:
                snap = read_snapshot(path, self._index())
            except SnapshotError as err:
                log.error("cannot use snapshot %s: %s", path, err)
                return Loaded(qos, None, unreadable_message(
                    qos, f"{path.name} is damaged or half-written"), version)
            self.cache.set(key, snap)
        if key not in self._memo:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))  # the oldest
            self._memo[key] = snap
        return Loaded(qos, snap, None, version)

    def colors(self) -> dict[str, str]:
        """One colour per user over all the site's QoS, so every tab agrees.
        Recomputed only when a snapshot changed (otherwise a stat per QoS)."""
        key = tuple(self.version(q) for q in self.qos_names)
        if self._colors is None or self._colors[0] != key:
            users: set[str] = set()
            for qos in self.qos_names:
                snap = self.load(qos).snapshot
                if snap is not None:
                    users.update(snap.users)
            self._colors = (key, assign_colors(users))
        return self._colors[1]
