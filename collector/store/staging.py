"""A backfill's answers kept as it goes, so an interrupted backfill resumes.

A year of history is a few hundred day-sized queries asked a second apart:
minutes, long enough to be cut short (a watchdog, a node reboot, slurmdbd
failing one query). `data_dir/store/backfill/` keeps each day's answer as
soon as it is read:

  staged.json          what the answers were asked for (the store's
                       fingerprint) and, per answer, its file, size and CRC-32
  jobs-<cluster>-<start>-<end>.arrow   a day's allocation lines (records)
  usage-<cluster>-<start>-<end>.npz    a day's step query, only the records
                       that had ended when it was asked (their usage is final)

The next backfill with the same fingerprint answers those days from here and
asks slurmdbd only for the rest. What may have changed since is asked again:
a span is kept only when it ended `overlap` before it was asked (late
arrivals land within the overlap, as for an incremental cycle); the records
that were still open when their day was kept are asked for by id, and so are
ended records that no usage answer covers. A finished backfill removes the
folder; any doubt about it (unreadable, another fingerprint) discards it.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collector.atomic import write_atomic
from collector.jobtable import USAGE_COLUMNS, JobTable
from collector.parse import UsageAnswer
from collector.store.files import StoreCorrupt, read_part, verify_file, write_table
from collector.store.records import keys_of

log = logging.getLogger(__name__)

STAGING_DIR = "backfill"
MANIFEST = "staged.json"


@dataclass(frozen=True)
class QuerySpan:
    cluster: str
    start: int
    end: int

    def name(self, kind: str, suffix: str) -> str:
        return f"{kind}-{self.cluster or 'default'}-{self.start}-{self.end}.{suffix}"


class Staging:
    """The staged answers of one fingerprint's backfill (`open`), added to as
    it goes (`keep_jobs`, `keep_usage`) and removed once it is done (`clear`)."""

    def __init__(self, folder: Path, fingerprint: str, files: dict[str, Any],
                 settled: int) -> None:
        self.folder, self.fingerprint, self.files = folder, fingerprint, files
        self.settled = settled    # spans ending after this are not kept (late arrivals)

    @classmethod
    def open(cls, store_folder: Path, fingerprint: str, settled: int) -> Staging:
        """The staged answers for `fingerprint` (none if there are none, or
        they were made for another configuration or cannot be read); this
        run keeps the spans that end by `settled` (now - the overlap)."""
        folder = store_folder / STAGING_DIR
        path = folder / MANIFEST
        files: dict[str, Any] = {}
        try:
            doc = json.loads(path.read_text())
            if doc.get("fingerprint") == fingerprint and isinstance(doc.get("files"), dict):
                files = doc["files"]
            else:
                log.info("backfill: the answers kept in %s were for another configuration; "
                         "starting afresh", folder)
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as err:
            log.warning("backfill: %s is unreadable (%s); starting afresh", path, err)
            shutil.rmtree(folder, ignore_errors=True)
        return cls(folder, fingerprint, files, settled)

    def _save(self) -> None:
        text = json.dumps({"fingerprint": self.fingerprint, "files": self.files},
                          indent=1, sort_keys=True).encode()
        write_atomic(self.folder / MANIFEST, lambda fh: fh.write(text))

    def _forget(self, name: str, why: str) -> None:
        log.warning("backfill: %s/%s %s; asking for it again", self.folder, name, why)
        self.files.pop(name, None)

    def jobs(self, span: QuerySpan) -> JobTable | None:
        """The allocation lines kept for `span`, or None (ask slurmdbd)."""
        name = span.name("jobs", "arrow")
        if name not in self.files:
            return None
        try:
            tables = read_part(self.folder, {"files": self.files}, name)
        except StoreCorrupt as err:
            self._forget(name, f"cannot be used ({err})")
            return None
        return tables.get(span.cluster, JobTable.empty())

    def keep_jobs(self, span: QuerySpan, jobs: JobTable) -> None:
        """Keep a span's allocation lines, if the span has settled."""
        if span.end > self.settled:
            return
        name = span.name("jobs", "arrow")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files[name] = write_table(self.folder, name, {span.cluster: jobs})
        self._save()

    def usage(self, span: QuerySpan) -> UsageAnswer | None:
        """The step answer kept for `span` (ended records only), or None."""
        name = span.name("usage", "npz")
        if name not in self.files:
            return None
        try:
            body = verify_file(self.folder, {"files": self.files}, name)
            with np.load(io.BytesIO(body)) as z:
                return UsageAnswer(job_id=z["job_id"], submit=z["submit"],
                                   usage={c: z[c] for c in USAGE_COLUMNS})
        except (StoreCorrupt, OSError, KeyError, ValueError, TypeError) as err:
            self._forget(name, f"cannot be used ({err})")
            return None

    def keep_usage(self, span: QuerySpan, answer: UsageAnswer, ended_keys: np.ndarray) -> None:
        """Keep the part of `answer` about records that had ended (`ended_keys`:
        their record_keys), if the span has settled: what a running job used so
        far is not final."""
        if span.end > self.settled:
            return
        final = np.isin(keys_of(answer.job_id, answer.submit), ended_keys)
        buf = io.BytesIO()
        arrays = {"job_id": answer.job_id[final], "submit": answer.submit[final],
                  **{c: answer.usage[c][final] for c in USAGE_COLUMNS}}
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        body = buf.getvalue()
        name = span.name("usage", "npz")
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / name, lambda fh: fh.write(body))
        self.files[name] = {"bytes": len(body), "crc32": zlib.crc32(body),
                            "records": int(final.sum())}
        self._save()

    def clear(self) -> None:
        """The backfill is done (or not wanted): remove what was kept."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.files = {}


def discard(store_folder: Path) -> None:
    """Remove a staging folder left by an interrupted backfill that will not
    resume (the store is in use again incrementally)."""
    if (store_folder / STAGING_DIR).exists():
        shutil.rmtree(store_folder / STAGING_DIR, ignore_errors=True)
