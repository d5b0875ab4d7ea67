"""The job store on disk: Arrow IPC files with their checksums, and the state.

`data_dir/store/` holds (each file replaced atomically, the state last):
  cold-NNNNNN.arrow  records that ended before the frozen boundary: the UTC
               midnight before (last cycle - overlap). No incremental query
               can return them again, so they are never rewritten: each day's
               move writes one new segment; a segment is deleted once all its
               records ended before the history kept; a backfill writes one.
  hot.arrow    everything else: running and pending jobs and what ended since
               the boundary; rewritten every cycle, and small.
  cold-sums.npz  the cold records binned once (collector/store/sums.py).
  jobs.json    the state: format version, the configuration the store was
               filled for, the time it is complete up to, and each file's
               size, record count and CRC-32.
A crash between two writes leaves a CRC that does not match, which reads as
a damaged store, and the store is rebuilt. Open the Arrow files with pyarrow
or pandas.read_feather to explore the history.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from collector.arrow_buffers import dictionary, from_numpy, names_and_codes, to_numpy
from collector.atomic import write_atomic
from collector.jobtable import CODE_COLUMNS, FLOAT_COLUMNS, JobTable, compact_names, concat
from collector.store.plan import StoreState

STORE_DIR = "store"
COLD_PREFIX = "cold-"        # cold-000001.arrow, cold-000002.arrow, ...: one per move
COLD_FILE = "cold-000001.arrow"  # the first segment (a backfill writes just this one)
HOT_FILE = "hot.arrow"
STATE_FILE = "jobs.json"

State = dict[str, Any]       # the state document as read from jobs.json


class StoreCorrupt(Exception):
    """The store cannot be trusted: unreadable, truncated or inconsistent."""


@dataclass(frozen=True)
class Store:
    cold: dict[str, JobTable]   # cluster ("" = the local one) -> records frozen for good
    hot: dict[str, JobTable]    # cluster -> open and recently ended records
    state: StoreState

    def __len__(self) -> int:
        return sum(len(t) for t in (*self.cold.values(), *self.hot.values()))

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.cold, *self.hot]))

    def jobs(self, cluster: str) -> JobTable:
        """Every record of one cluster."""
        return concat([self.cold.get(cluster, JobTable.empty()),
                       self.hot.get(cluster, JobTable.empty())])


def store_folder(data_dir: Path) -> Path:
    return data_dir / STORE_DIR


_DICT = pa.dictionary(pa.int32(), pa.string())
_SCHEMA = pa.schema([
    ("cluster", _DICT), ("job_id", pa.int64()), ("user", _DICT), ("qos", _DICT),
    ("state", _DICT), ("reason", _DICT), ("account", _DICT), ("partition", _DICT),
    *((c, pa.float64()) for c in FLOAT_COLUMNS),
])


def _to_arrow(jobs: dict[str, JobTable]) -> pa.Table:
    """One record batch (an IPC file allows one dictionary per column)."""
    clusters = list(jobs)
    t = compact_names(concat(list(jobs.values())))
    cluster_codes = np.repeat(np.arange(len(clusters)), [len(x) for x in jobs.values()])
    arrays = [dictionary(cluster_codes, clusters),
              from_numpy(t.job_id.astype(np.int64, copy=False), pa.int64()),
              *(dictionary(getattr(t, col), getattr(t, attr)) for col, attr in CODE_COLUMNS),
              *(from_numpy(getattr(t, c).astype(np.float64, copy=False), pa.float64())
                for c in FLOAT_COLUMNS)]
    return pa.Table.from_batches([pa.RecordBatch.from_arrays(arrays, schema=_SCHEMA)])


def _from_arrow(table: pa.Table) -> dict[str, JobTable]:
    batch = table.combine_chunks().to_batches()
    if not batch:
        return {}
    b = batch[0]
    clusters, cluster_codes = names_and_codes(b.column(0))
    columns: dict[str, Any] = {}
    names: dict[str, Any] = {}
    for col, attr in CODE_COLUMNS:
        names[attr], columns[col] = names_and_codes(b.column(col))
    columns["job_id"] = to_numpy(b.column("job_id")).astype(np.int64)
    for c in FLOAT_COLUMNS:
        columns[c] = to_numpy(b.column(c), fill=np.nan)
    for codes, n in (*((columns[col], len(names[attr])) for col, attr in CODE_COLUMNS),
                     (cluster_codes, len(clusters))):
        if len(codes) and (codes.min() < 0 or codes.max() >= n):
            raise StoreCorrupt("a dictionary code points outside its dictionary")
    everything = JobTable(**columns, **names)
    if len(clusters) == 1:
        return {clusters[0]: everything}
    return {c: everything.take(cluster_codes == i) for i, c in enumerate(clusters)}


def write_table(folder: Path, name: str, jobs: dict[str, JobTable]) -> dict[str, Any]:
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, _SCHEMA, options=ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(_to_arrow(jobs))
    body = sink.getvalue()
    write_atomic(folder / name, lambda fh: fh.write(body))
    return {"bytes": body.size, "crc32": zlib.crc32(body),
            "records": sum(len(t) for t in jobs.values())}


def cold_segments(raw: State | None) -> list[str]:
    """The cold segment files a state lists, oldest first."""
    return sorted(n for n in (raw or {}).get("files", {}) if n.startswith(COLD_PREFIX))


def segments_fingerprint(raw: State | None) -> str:
    """Which cold segments (names and CRCs) some sums belong to."""
    files = (raw or {}).get("files", {})
    return json.dumps([[n, files[n].get("crc32")] for n in cold_segments(raw)])


def next_segment(raw: State | None) -> str:
    names = cold_segments(raw)
    n = int(names[-1][len(COLD_PREFIX):-len(".arrow")]) + 1 if names else 1
    return f"{COLD_PREFIX}{n:06d}.arrow"


def write_segment(folder: Path, name: str, jobs: dict[str, JobTable]) -> dict[str, Any]:
    info: dict[str, Any] = write_table(folder, name, jobs)
    ends = [float(np.nanmax(t.end)) for t in jobs.values() if len(t)]
    info["max_end"] = max(ends) if ends else None
    return info


def write_state(folder: Path, state: StoreState, files: dict[str, Any]) -> State:
    doc = {
        "version": state.version, "fingerprint": state.fingerprint,
        "synced_to": state.synced_to, "full_at": state.full_at,
        "history_from": state.history_from,
        "records": sum(int(f.get("records", 0)) for f in files.values()), "files": files,
        "written": int(time.time()),
    }
    text = json.dumps(doc, indent=1, sort_keys=True).encode()
    write_atomic(folder / STATE_FILE, lambda fh: fh.write(text))
    return doc


def save_store(folder: Path, store: Store, cold_changed: bool = True,
               previous: State | None = None) -> State:
    """Write the hot records and, when the cold ones changed (or none are on
    disk), all cold records as one segment in place of the old ones; then the
    state that vouches for them (last), then remove what it no longer lists."""
    folder.mkdir(parents=True, exist_ok=True)
    old = cold_segments(previous)
    files = {n: (previous or {})["files"][n] for n in old}
    if cold_changed or not old:
        name = next_segment(previous)
        files = {name: write_segment(folder, name, store.cold)}
    files[HOT_FILE] = write_table(folder, HOT_FILE, store.hot)
    doc = write_state(folder, store.state, files)
    for name in old:
        if name not in files:
            (folder / name).unlink(missing_ok=True)
    return doc


def verify_file(folder: Path, raw: State, name: str) -> bytes:
    """A record file's bytes, checked against the size and CRC-32 in the state
    (a few milliseconds even for the cold file: each cycle checks both)."""
    info = raw["files"].get(name)
    path = folder / name
    try:
        size, crc = int(info["bytes"]), int(info["crc32"])
    except (KeyError, TypeError, ValueError) as err:
        raise StoreCorrupt(f"{folder / STATE_FILE} lacks or garbles {name}'s {err}") from None
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        raise StoreCorrupt(f"{path} is missing") from None
    except OSError as err:
        raise StoreCorrupt(f"{path}: {err.strerror}") from None
    if len(body) != size or zlib.crc32(body) != crc:
        raise StoreCorrupt(f"{path} does not match its checksum in {STATE_FILE} "
                           f"({len(body)} bytes, expected {size})")
    return body


def read_part(folder: Path, raw: State, name: str) -> dict[str, JobTable]:
    """One record file (the hot part or a segment), checked against the state."""
    if name not in raw["files"]:
        raise StoreCorrupt(f"{folder / STATE_FILE} does not list {name}")
    path = folder / name
    body = verify_file(folder, raw, name)
    try:
        records = int(raw["files"][name]["records"])
    except (KeyError, TypeError, ValueError) as err:
        raise StoreCorrupt(f"{folder / STATE_FILE} lacks or garbles {name}'s {err}") from None
    try:
        table = ipc.open_file(pa.py_buffer(body)).read_all()
    except (pa.ArrowException, OSError) as err:
        raise StoreCorrupt(f"{path} is not a readable Arrow file: {err}") from None
    if not table.schema.equals(_SCHEMA):
        raise StoreCorrupt(f"{path} has other columns than this version writes")
    jobs = _from_arrow(table)
    if sum(len(t) for t in jobs.values()) != records:
        raise StoreCorrupt(f"{path} holds {sum(len(t) for t in jobs.values())} records, "
                           f"its state says {records}")
    return jobs


def read_state(folder: Path) -> State | None:
    """The raw state document; None when there is no store; StoreCorrupt if unreadable."""
    state_path = folder / STATE_FILE
    if not state_path.exists():
        if (folder / HOT_FILE).exists() or any(folder.glob(f"{COLD_PREFIX}*.arrow")):
            raise StoreCorrupt(f"{state_path} is missing")
        return None
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError) as err:
        raise StoreCorrupt(f"{state_path}: {err}") from None
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        raise StoreCorrupt(f"{state_path} is not a store state (no files)")
    return state


def state_of(raw: State, folder: Path) -> StoreState:
    try:
        return StoreState(fingerprint=str(raw["fingerprint"]), synced_to=int(raw["synced_to"]),
                          full_at=int(raw["full_at"]), version=int(raw["version"]),
                          history_from=int(raw.get("history_from") or 0))
    except (KeyError, TypeError, ValueError) as err:
        raise StoreCorrupt(f"{folder / STATE_FILE} lacks or garbles {err}") from None


def read_cold(folder: Path, raw: State) -> dict[str, JobTable]:
    """Every cold record, all segments, per cluster."""
    parts: dict[str, list[JobTable]] = {}
    for name in cold_segments(raw):
        for cluster, jobs in read_part(folder, raw, name).items():
            parts.setdefault(cluster, []).append(jobs)
    return {cluster: concat(tables) for cluster, tables in parts.items()}


def load_store(folder: Path) -> Store | None:
    """Every record, or None when there is none; `StoreCorrupt` when it cannot be trusted."""
    raw = read_state(folder)
    if raw is None:
        return None
    return Store(cold=read_cold(folder, raw), hot=read_part(folder, raw, HOT_FILE),
                 state=state_of(raw, folder))


def set_aside(folder: Path) -> Path:
    """Move a damaged store out of the way (kept for a look), return where."""
    aside = folder.with_name(f"{folder.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    n = 1
    while aside.exists():
        n += 1
        aside = aside.with_name(f"{folder.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{n}")
    os.replace(folder, aside)
    return aside
