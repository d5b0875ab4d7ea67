"""Which snapshot is current as of which cycle: `checked.json` in the data folder.

A cycle writes a QoS's snapshot only when its content changed: at 500 QoS
most of a cycle's files would otherwise be rewritten (and their plots
redrawn) only for a new time in them. The content is the file's bytes with
every stamp of the cycle's time (`metadata.last_updated`, `window_end`, the
queue's `read_at`: the ISO text of `now`) left out, so two cycles that saw
the same jobs, limits and queue give the same digest.

Each entry says what one file holds (`written`: its own `now`; its size and
mtime, to notice a file replaced behind the collector's back) and the last
cycle that found the same content (`checked`). A reader stamps a snapshot
whose entry still describes it with `checked` (collector/snapshot.py
`read_snapshot`), so the pages' freshness is the cycle's, not the last
change's. A missing or damaged index only costs a rewrite: every file is
then written again and nothing is stamped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from collector.atomic import write_atomic

INDEX = "checked.json"
log = logging.getLogger("librarian.collect")


@dataclass(frozen=True)
class Entry:
    """One snapshot file as the last cycle left it."""

    digest: str        # of its content, the cycle's time left out
    written: int       # the `now` the file holds (epoch seconds)
    checked: int       # the last cycle that found this content (>= written)
    size: int
    mtime_ns: int
    plots: str = ""    # what its plots were drawn from ("" : not drawn)
    plotted: int = 0   # the cycle that drew them

    def describes(self, path: Path) -> bool:
        """The file is still the one this entry was made for (one stat)."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == (self.size, self.mtime_ns)


def content_digest(body: bytes, now_text: str) -> str:
    """The digest of a snapshot's JSON with every string equal to `now_text`
    (the ISO time of its `now`) read as one placeholder."""
    stamp = orjson.dumps(now_text)
    # sha256: the CPU's own instructions make it twice as fast as blake2b here.
    return hashlib.sha256(body.replace(stamp, b'"@now"')).hexdigest()[:32]


def entry_for(path: Path, digest: str, now: int, plots: str = "") -> Entry:
    st = os.stat(path)
    return Entry(digest=digest, written=now, checked=now, size=st.st_size,
                 mtime_ns=st.st_mtime_ns, plots=plots)


def read_index(data_dir: Path) -> dict[str, Entry]:
    """The index by file name; {} when missing or unreadable (logged: the next
    cycle rewrites every file and the index)."""
    path = data_dir / INDEX
    try:
        doc = orjson.loads(path.read_bytes())
        return {name: Entry(**e) for name, e in doc["files"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        log.warning("%s: unreadable (%s); every snapshot is written again", path, err)
        return {}


def write_index(data_dir: Path, entries: Mapping[str, Entry]) -> None:
    body = orjson.dumps({"version": 1, "files": {n: asdict(e) for n, e in sorted(entries.items())}},
                        option=orjson.OPT_INDENT_2)
    write_atomic(data_dir / INDEX, lambda fh: fh.write(body))
