"""Snapshots: the JSON shape (validated against the schema), round trips, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from collector.atomic import write_atomic
from collector.observables import KEYS as OBSERVABLES
from collector.observables import Limits
from collector.snapshot import (
    SCHEMA_PATH,
    Snapshot,
    SnapshotError,
    from_dict,
    read_snapshot,
    snapshot_users,
    to_dict,
    write_snapshot,
)

SCHEMA = json.loads(SCHEMA_PATH.read_text())


def validate(doc: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)


def make(users: tuple[str, ...] = ("ann", "bo"), n_bins: int = 3, tz: str = "America/New_York") -> Snapshot:
    rng = np.random.default_rng(1)
    return Snapshot(
        qos="avery", site="HiPerGator", timezone=tz, now=1_764_000_100, bin_seconds=3600,
        window_start=1_764_000_000 - (n_bins - 1) * 3600 - 0, n_bins=n_bins, users=users,
        series={o: rng.random((len(users), n_bins)) * 10 for o in OBSERVABLES},
        current={o: np.arange(len(users), dtype=float) for o in OBSERVABLES},
        thresholds=Limits(cpus=430, gpus=39, memory_gb=None).thresholds(), jobs_counted=7, skipped_lines=2,
        skipped_line_numbers=(4, 9), source="sacct", generator="librarian test",
    )


class TestShape:
    def test_matches_the_schema(self) -> None:
        validate(to_dict(make()))

    def test_empty_snapshot_matches_the_schema(self) -> None:
        doc = to_dict(make(users=()))
        validate(doc)
        assert doc["users"] == []
        assert doc["observables"]["NCPUS"] == {}
        assert len(doc["time_idxs"]) == 3

    def test_seed_keys_are_kept(self) -> None:
        doc = to_dict(make())
        assert doc["metadata"]["qos"] == "avery"
        assert doc["metadata"]["time_resolution_seconds"] == 3600
        seed = {"NCPUS", "NGPUS", "MEMORY", "NJOBS"}
        assert set(doc["observables"]) == seed | {f"QUEUED_{k}" for k in seed} | \
            {"USED_NCPUS", "USED_MEMORY"}
        assert doc["nice_names"]["MEMORY"] == "Memory (GB)"
        assert doc["thresholds"] == {"NCPUS": 430, "NGPUS": 39, "MEMORY": None, "NJOBS": None}

    def test_a_version_1_file_reads_with_nothing_queued(self) -> None:
        doc = to_dict(make())
        doc["schema_version"] = 1
        for key in list(doc["observables"]):
            if key.startswith("QUEUED_"):
                del doc["observables"][key]
        for part in ("queue", "pressure", "limit_now", "waits"):
            del doc[part]
        snap = from_dict(doc)
        assert snap.queue is None
        assert not snap.pressure
        assert not snap.limit_now
        assert snap.series["QUEUED_NCPUS"].shape == snap.series["NCPUS"].shape
        assert not snap.series["QUEUED_NCPUS"].any()

    def test_a_version_3_file_reads_with_nothing_used(self) -> None:
        doc = to_dict(make())
        doc["schema_version"] = 3
        for key in ("USED_NCPUS", "USED_MEMORY"):
            del doc["observables"][key]
            for per_user in doc["current_usage"].values():
                del per_user[key]
        snap = from_dict(doc)
        assert snap.series["USED_NCPUS"].shape == snap.series["NCPUS"].shape
        assert not snap.series["USED_NCPUS"].any()
        assert not snap.series["USED_MEMORY"].any()
        assert snap.series["NCPUS"].any()
        doc["schema_version"] = 4     # a version 4 file must have them
        with pytest.raises(SnapshotError, match="USED_NCPUS"):
            from_dict(doc)

    def test_the_queue_parts_round_trip(self) -> None:
        from collector.pressure import AtLimitNow, Pressure, Waits, local_days, wait_days
        from collector.snapshot import QueueState
        from collector.squeue import QueueRow
        base = make()
        n = base.n_bins
        snap = dataclasses.replace(
            base,
            queue=QueueState(read_at=base.now, rows=(QueueRow("bob", 2, 8, 1, 16.0, 600, "QOSGrpCpuLimit",
                                                              "the group is at its QoS CPU limit", 1,
                                                              {"QOSGrpCpuLimit": 2}),)),
            pressure={"NCPUS": Pressure(np.arange(n, dtype=float), np.zeros(n), np.full(n, 4.0))},
            limit_now=(AtLimitNow("NCPUS", 430, 430, (("ana", 400.0), ("ben", 30.0)), 6,
                                  float(base.now + 3600)),),
            waits=wait_days(Waits(("ana",), np.array([0]), np.array([float(base.now - 60)]),
                                  np.array([30.0]), np.array([10.0]), np.array([True])),
                            local_days(base.window_start, base.now, base.timezone)))
        doc = to_dict(snap)
        validate(doc)
        back = from_dict(json.loads(json.dumps(doc)))
        assert back.queue == snap.queue
        np.testing.assert_array_equal(back.pressure["NCPUS"].at_limit, np.arange(n))
        assert back.limit_now == snap.limit_now
        assert back.waits.users == ("ana",)
        assert back.waits.at_limit.tolist() == [10.0]
        assert back.waits.histogram(np.array([True])).sum() == 1
        doc["pressure"]["NCPUS"]["peak"] = [1.0]
        with pytest.raises(SnapshotError, match=r"pressure\.NCPUS"):
            from_dict(doc)

    def test_times_carry_the_site_offset(self) -> None:
        doc = to_dict(make())
        # 1_764_000_000 is 2025-11-24T16:00:00Z, EST (-05:00).
        assert doc["time_idxs"][-1] == "2025-11-24T11:00:00-05:00"
        assert doc["metadata"]["last_updated"] == "2025-11-24T11:01:40-05:00"
        assert doc["metadata"]["window_end"] == doc["metadata"]["last_updated"]

    def test_a_bad_document_fails_the_schema(self) -> None:
        doc = to_dict(make())
        doc["observables"]["NCPUS"]["ann"][0] = -1
        with pytest.raises(jsonschema.ValidationError):
            validate(doc)


class TestRoundTrip:
    def test_to_dict_from_dict(self) -> None:
        snap = make()
        back = from_dict(json.loads(json.dumps(to_dict(snap))))
        assert back.users == snap.users
        assert (back.now, back.window_start, back.n_bins) == (snap.now, snap.window_start, 3)
        for o in OBSERVABLES:
            np.testing.assert_allclose(back.series[o], snap.series[o], atol=1e-4)
        assert back.thresholds == {"NCPUS": 430, "NGPUS": 39, "MEMORY": None, "NJOBS": None}
        assert back.skipped_line_numbers == (4, 9)

    @pytest.mark.parametrize(("mutate", "message"), [
        (lambda d: d.pop("users"), "users is missing"),
        (lambda d: d.update(schema_version=99), "schema_version 99"),
        (lambda d: d["observables"]["NGPUS"].pop("bo"), "observables.NGPUS.bo"),
        (lambda d: d["observables"]["NCPUS"]["ann"].append(1), "list of 3 numbers"),
        (lambda d: d["observables"]["NCPUS"]["ann"].__setitem__(0, "x"), "not a number"),
        (lambda d: d["metadata"].update(window_end="yesterday"), "not an ISO 8601 time"),
        (lambda d: d["metadata"].update(n_bins=5), "n_bins says 5"),
    ])
    def test_bad_documents_name_the_problem(self, mutate, message: str) -> None:
        doc = to_dict(make())
        mutate(doc)
        with pytest.raises(SnapshotError, match=message):
            from_dict(doc)


class TestFiles:
    def test_write_then_read(self, tmp_path: Path) -> None:
        path = tmp_path / "d" / "data_avery.json"
        write_snapshot(path, make())
        assert read_snapshot(path).users == ("ann", "bo")
        validate(json.loads(path.read_text()))

    def test_written_files_are_readable_by_a_web_server(self, tmp_path: Path) -> None:
        path = tmp_path / "data_avery.json"
        write_snapshot(path, make())
        assert stat.S_IMODE(path.stat().st_mode) == 0o644

    def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(self, tmp_path: Path) -> None:
        path = tmp_path / "data_avery.json"
        path.write_text("old")

        def explode(fh) -> None:
            fh.write(b"half a fi")
            raise RuntimeError("disk on fire")

        with pytest.raises(RuntimeError):
            write_atomic(path, explode)
        assert path.read_text() == "old"
        assert os.listdir(tmp_path) == ["data_avery.json"]

    def test_half_written_file_is_a_clear_error(self, tmp_path: Path) -> None:
        path = tmp_path / "data_avery.json"
        path.write_text(json.dumps(to_dict(make()))[:500])
        with pytest.raises(SnapshotError, match=r"data_avery\.json: not valid JSON"):
            read_snapshot(path)

    def test_missing_file_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(SnapshotError, match="cannot read"):
            read_snapshot(tmp_path / "data_nope.json")


@pytest.mark.parametrize(("body", "says"), [(b"{not json", "not valid JSON"),
                                            (b'{"users": "ana"}', "users must be a list"),
                                            (b"[1, 2]", "users must be a list")])
def test_a_snapshots_users_alone_refuse_a_bad_file_naming_it(tmp_path: Path, body: bytes,
                                                             says: str) -> None:
    path = tmp_path / "data_x.json"
    path.write_bytes(body)
    with pytest.raises(SnapshotError, match=says) as err:
        snapshot_users(path)
    assert str(path) in str(err.value)
    with pytest.raises(SnapshotError, match="cannot read"):
        snapshot_users(tmp_path / "data_gone.json")
