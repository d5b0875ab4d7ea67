"""Efficiency from sacct's own fields: the value formats, steps folded into
one row per job, the weighted sums per user and the flags, on hand-worked cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import parse_config
from collector.config_model import EfficiencyConfig
from collector.efficiency import (
    cpu_seconds,
    efficiency_days,
    efficiency_rows,
    fold_steps,
    sizes_gib,
    tres_entry,
)
from collector.jobtable import JobTable
from collector.parse import parse_sacct
from collector.sacct import FIELDS, USAGE_FIELDS

H = 3600.0


class TestFormats:
    @pytest.mark.parametrize(("text", "seconds"), [
        ("00:00.003", 0.003),          # MM:SS.mmm
        ("12:34.500", 754.5),
        ("01:02:03", 3723.0),          # HH:MM:SS
        ("2-01:02:03", 2 * 86400 + 3723.0),   # D-HH:MM:SS
        ("10-00:00:00", 864000.0),
    ])
    def test_total_cpu(self, text: str, seconds: float) -> None:
        value, bad = cpu_seconds(pa.array([text]))
        assert value[0] == pytest.approx(seconds)
        assert not bad[0]

    @given(st.lists(st.one_of(
        # sacct's three shapes, any digits...
        st.from_regex(r"\A[0-9]{2}:[0-9]{2}\.[0-9]{3}\Z"),
        st.from_regex(r"\A[0-9]{2}:[0-9]{2}:[0-9]{2}\Z"),
        st.from_regex(r"\A[0-9]{1,6}-[0-9]{2}:[0-9]{2}:[0-9]{2}\Z"),
        # ...looser ones the regex takes, and near misses and junk of the same lengths
        st.from_regex(r"\A[0-9]{1,3}(:[0-9]{1,3}){1,2}(\.[0-9]{1,4})?\Z"),
        st.from_regex(r"\A[0-9:.\- a]{0,14}\Z"), st.text(max_size=12), st.just("")),
        max_size=30))
    @settings(max_examples=300, deadline=None)
    def test_total_cpu_by_position_equals_the_regex(self, texts: list[str]) -> None:
        from collector.efficiency import _cpu_seconds_by_regex

        fast, fast_bad = cpu_seconds(pa.array(texts, pa.string()))
        slow, slow_bad = _cpu_seconds_by_regex(pa.array(texts, pa.string()))
        assert np.array_equal(fast, slow, equal_nan=True), list(zip(texts, fast, slow, strict=True))
        assert fast_bad.tolist() == slow_bad.tolist()

    def test_total_cpu_empty_is_not_recorded_and_junk_is_counted(self) -> None:
        value, bad = cpu_seconds(pa.array(["", "soon", "1:2:3:4", None]))
        assert np.isnan(value).all()
        assert bad.tolist() == [False, True, True, False]

    @pytest.mark.parametrize(("text", "gib"), [
        ("3203072", 3203072 / 2**30),   # --noconvert: bytes
        ("3128K", 3128 / 2**20),
        ("512M", 0.5),
        ("1.5G", 1.5),
        ("2T", 2048.0),
        ("0", 0.0),
    ])
    def test_memory_sizes(self, text: str, gib: float) -> None:
        value, bad = sizes_gib(pa.array([text]))
        assert value[0] == pytest.approx(gib)
        assert not bad[0]

    def test_memory_junk_is_counted_and_empty_is_not(self) -> None:
        value, bad = sizes_gib(pa.array(["", "12X", "-5K"]))
        assert np.isnan(value).all()
        assert bad.tolist() == [False, True, True]

    def test_tres_entries(self) -> None:
        text = pa.array(["cpu=00:00:00,energy=0,fs/disk=11085,mem=3203072,pages=0,vmem=5644288",
                         "gres/gpumem=2G,gres/gpuutil=87,mem=1G", ""])
        assert tres_entry(text, "mem").to_pylist() == ["3203072", "1G", ""]
        assert tres_entry(text, "gres/gpuutil").to_pylist() == ["", "87", ""]
        assert tres_entry(text, "gres/gpumem").to_pylist() == ["", "2G", ""]


class TestSteps:
    def test_peak_of_maxrss_sum_of_cpu_and_weighted_gpu_utilisation(self) -> None:
        """Job 6: a batch step (3 MiB, 40 s at 80%) and an srun step (5 GiB,
        TRESUsageInMax mem 6 GiB, 10 s at 20%): peak 6 GiB, GPU 68%. Job 8
        records nothing."""
        usage = fold_steps(
            np.array([6, 6, 8]), np.array([40.0, 10.0, 45.0]),
            pa.array(["3145728", "5G", ""]),
            pa.array(["mem=3145728", "mem=6G,gres/gpumem=2G", ""]),
            pa.array(["gres/gpuutil=80", "gres/gpuutil=20", ""]),
            pa.array(["00:01.000", "00:02.500", ""]))
        assert usage.key.tolist() == [6, 8]
        assert usage.peak_rss_gib[0] == pytest.approx(6.0)
        assert usage.gpu_util[0] == pytest.approx((80 * 40 + 20 * 10) / 50)
        assert usage.gpu_mem_gib[0] == pytest.approx(2.0)
        assert usage.total_cpu[0] == pytest.approx(3.5)
        assert np.isnan([usage.peak_rss_gib[1], usage.gpu_util[1], usage.total_cpu[1]]).all()
        assert usage.bad == {}


HEADER = "|".join((*FIELDS, *USAGE_FIELDS))


def line(jobid: str, user: str = "alice", elapsed: str = "3600", ncpus: str = "4",
         total_cpu: str = "", max_rss: str = "", alloc: str = "cpu=4,mem=8G,node=1",
         tres_max: str = "", tres_ave: str = "", timelimit: str = "240") -> str:
    step = "." in jobid
    values = {"JobIDRaw": jobid, "JobID": jobid, "User": "" if step else user,
              "QOS": "" if step else "avery", "State": "COMPLETED",
              "Submit": "2026-11-25T10:00:00", "Start": "2026-11-25T10:00:00",
              "End": "2026-11-25T11:00:00", "ElapsedRaw": elapsed, "NNodes": "1",
              "NCPUS": ncpus, "ReqMem": "8G", "ReqTRES": alloc, "AllocTRES": alloc,
              "Eligible": "2026-11-25T10:00:00", "ReqCPUS": ncpus, "Reason": "None",
              "TimelimitRaw": "" if step else timelimit, "TotalCPU": total_cpu,
              "MaxRSS": max_rss, "TRESUsageInMax": tres_max, "TRESUsageInAve": tres_ave,
              "Account": "" if step else "avery", "Partition": "" if step else "hpg-default"}
    return "|".join(values[f] for f in HEADER.split("|"))


class TestParse:
    def test_a_saved_file_with_steps_gives_each_job_its_usage(self) -> None:
        text = "\n".join([
            HEADER,
            line("1", total_cpu="04:00:00"),
            line("1.batch", total_cpu="01:00:00", max_rss="2G"),
            line("1.0", total_cpu="03:00:00", max_rss="4G", tres_max="mem=4G"),
            line("2", user="bob", total_cpu=""),        # nothing on the allocation line
            line("2.batch", total_cpu="30:00.000", max_rss="1024M"),
            line("3", user="carol"),                    # no steps at all
        ]) + "\n"
        r = parse_sacct(text.encode())
        assert r.step_lines == 3
        assert r.jobs.job_id.tolist() == [1, 2, 3]
        assert r.jobs.total_cpu[:2].tolist() == [4 * H, 1800.0]   # bob's from his steps
        assert r.jobs.peak_rss_gib[:2].tolist() == [4.0, 1.0]
        assert np.isnan([r.jobs.total_cpu[2], r.jobs.peak_rss_gib[2]]).all()
        assert np.isnan(r.jobs.gpu_util).all()    # not recorded: never 0

    def test_an_unreadable_value_skips_that_field_only(self) -> None:
        text = "\n".join([
            HEADER,
            line("1", total_cpu="soon"),
            line("1.batch", max_rss="lots"),
            line("2", total_cpu="01:00:00"),
        ]) + "\n"
        r = parse_sacct(text.encode())
        assert r.bad_lines == 0
        assert r.jobs.job_id.tolist() == [1, 2]       # job 1 still counts
        assert np.isnan(r.jobs.total_cpu[0])
        assert np.isnan(r.jobs.peak_rss_gib[0])
        assert r.jobs.total_cpu[1] == H
        assert r.bad_fields == {"TotalCPU": 1, "MaxRSS": 1}
        assert "1 unreadable MaxRSS" in r.bad_summary()

    def test_a_file_without_the_fields_reads_as_not_recorded(self, samples: Path) -> None:
        jobs = parse_sacct((samples / "sacct_avery.txt").read_bytes()).jobs
        assert len(jobs)
        assert np.isnan(jobs.total_cpu).all()
        assert np.isnan(jobs.peak_rss_gib).all()


def table(rows: list[dict]) -> JobTable:
    """Ended jobs from dicts: user, end (h), elapsed (h), cpus, mem, gpus,
    total_cpu (h), peak (GiB), util (%), limit (h)."""
    n = len(rows)

    def col(key: str, scale: float = 1.0, default: float = np.nan) -> np.ndarray:
        return np.array([r.get(key, default) for r in rows], dtype=float) * scale

    users = tuple(sorted({r["user"] for r in rows}))
    end, elapsed = col("end", H), col("elapsed", H)
    return JobTable.build(
        job_id=np.arange(1, n + 1), user=np.array([users.index(r["user"]) for r in rows]),
        qos=np.zeros(n, dtype=np.int64), state=np.zeros(n, dtype=np.int64),
        submit=end - elapsed, start=end - elapsed, end=end, elapsed=elapsed,
        nnodes=np.ones(n), cpus=col("cpus", 1, 1), gpus=col("gpus", 1, 0),
        mem_gib=col("mem", 1, 1), timelimit=col("limit", H), total_cpu=col("total_cpu", H),
        peak_rss_gib=col("peak"), gpu_util=col("util"),
        users=users, qos_names=("avery",), states=("COMPLETED",))


RULES = EfficiencyConfig()
DAYS = np.arange(0, 4) * 86400.0   # three UTC days


class TestPerUser:
    def test_weighted_sums_not_means_of_ratios(self) -> None:
        """alice: a 10 h job on 10 CPUs using 50 CPU-h and a 1 h job on 1 CPU
        using 1 CPU-h: 51 / 101, not the mean of 50% and 100%."""
        jobs = table([
            {"user": "alice", "end": 20, "elapsed": 10, "cpus": 10, "total_cpu": 50,
             "mem": 100, "peak": 10, "limit": 20},
            {"user": "alice", "end": 30, "elapsed": 1, "cpus": 1, "total_cpu": 1,
             "mem": 4, "peak": 4, "limit": 10},
            {"user": "bob", "end": 40, "elapsed": 2, "cpus": 2, "total_cpu": 4},
        ])
        rows = {r.user: r for r in efficiency_rows(efficiency_days(jobs, DAYS, 3 * 86400),
                                                   0, 3 * 86400 - 1, RULES)}
        a = rows["alice"]
        assert a.jobs == 2
        assert a.cpu == pytest.approx(51 / 101)
        assert a.memory == pytest.approx((10 * 10 + 4 * 1) / (100 * 10 + 4 * 1))
        assert a.time == pytest.approx(11 / 30)
        assert a.wasted_cpu_hours == pytest.approx(50)
        assert a.wasted_gb_hours == pytest.approx(1004 - 104)
        b = rows["bob"]
        assert b.cpu == 1.0
        assert np.isnan([b.memory, b.time, b.gpu]).all()   # not recorded
        assert [r.user for r in efficiency_rows(efficiency_days(jobs, DAYS, 3 * 86400), 0,
                                                3 * 86400 - 1, RULES)] == ["alice", "bob"]

    def test_the_range_picks_days_of_end(self) -> None:
        jobs = table([{"user": "alice", "end": 10, "elapsed": 1, "total_cpu": 1},
                      {"user": "alice", "end": 30, "elapsed": 1, "total_cpu": 0.5}])
        days = efficiency_days(jobs, DAYS, 3 * 86400)
        (second_day,) = efficiency_rows(days, 86400, 2 * 86400 - 1, RULES)
        assert (second_day.jobs, second_day.cpu) == (1, 0.5)

    def test_running_and_future_jobs_are_not_counted(self) -> None:
        jobs = table([{"user": "alice", "end": 10, "elapsed": 1, "total_cpu": 1},
                      {"user": "alice", "end": 60, "elapsed": 1, "total_cpu": 1}])
        rows = efficiency_rows(efficiency_days(jobs, DAYS, 30 * H), 0, 3 * 86400, RULES)
        assert rows[0].jobs == 1


class TestFlags:
    def big(self, **job: float) -> JobTable:
        base = {"user": "alice", "end": 30, "elapsed": 10, "cpus": 32, "total_cpu": 300,
                "mem": 100, "peak": 90, "limit": 12}
        return table([{**base, **job}])

    def flags(self, jobs: JobTable, rules: EfficiencyConfig = RULES) -> tuple[str, ...]:
        (row,) = efficiency_rows(efficiency_days(jobs, DAYS, 3 * 86400), 0, 3 * 86400, rules)
        return row.flags

    def test_none_for_a_job_that_uses_what_it_holds(self) -> None:
        assert self.flags(self.big()) == ()

    def test_cpu_under_60_percent_over_100_cpu_hours(self) -> None:
        assert self.flags(self.big(total_cpu=100)) == ("cpu",)        # 31% of 320 CPU-h
        assert self.flags(self.big(cpus=4, total_cpu=1)) == ()        # only 40 CPU-h held

    def test_memory_under_35_percent_over_500_gb_hours(self) -> None:
        assert self.flags(self.big(peak=20)) == ("memory",)           # 20% of 1000 GB-h
        assert self.flags(self.big(peak=20, mem=40)) == ()            # 400 GB-h: too small

    def test_time_under_20_percent_of_the_limit(self) -> None:
        assert self.flags(self.big(limit=72)) == ("time",)

    def test_gpu_under_25_percent_or_any_gpu_job_at_zero(self) -> None:
        assert self.flags(self.big(gpus=2, util=10)) == ("gpu",)
        assert self.flags(self.big(gpus=2, util=90)) == ()
        two = table([{"user": "alice", "end": 30, "elapsed": 10, "gpus": 1, "util": 100},
                     {"user": "alice", "end": 31, "elapsed": 1, "gpus": 1, "util": 0}])
        assert self.flags(two) == ("gpu",)       # 91% overall, but one job never used its GPU

    def test_thresholds_come_from_the_configuration(self, tmp_path: Path) -> None:
        config = parse_config({"qos": [{"name": "avery"}],
                               "efficiency": {"cpu_below_percent": 20}}, "t.toml", tmp_path)
        assert self.flags(self.big(total_cpu=100), config.efficiency) == ()


class TestEndToEnd:
    """A saved sacct file with step lines → `librarian collect` → the
    snapshot (schema 4, valid) → the efficiency table's rows and the used
    series; anonymised, the table names only pseudonyms."""

    def collect(self, tmp_path: Path) -> Path:
        from collector.collect import collect
        from collector.config import load_config

        text = "\n".join([
            HEADER,
            # alice spins 4 CPUs for an hour and uses 6 of 8 GB: efficient.
            line("1", total_cpu="03:58:00", alloc="cpu=4,mem=8G,node=1", timelimit="90"),
            line("1.batch", total_cpu="03:58:00", max_rss="6G"),
            # bob holds 32 CPUs for 10 hours, sleeps, asks 3 days: every flag but GPU.
            line("2", user="bob", elapsed="36000", ncpus="32", total_cpu="00:10:00",
                 alloc="cpu=32,mem=200G,node=1", timelimit="4320"),
            line("2.batch", elapsed="36000", total_cpu="00:10:00", max_rss="5G"),
        ]) + "\n"
        (tmp_path / "sacct.txt").write_text(text)
        (tmp_path / "librarian.toml").write_text(
            '[site]\nname = "T"\ntimezone = "UTC"\ndata_dir = "data"\n'
            '[collect]\nbin_seconds = 3600\nwindow_days = 2\n[[qos]]\nname = "avery"\n'
            'limits = { cpus = 64, gpus = 0, memory_gb = 512 }\n')
        config = load_config(tmp_path / "librarian.toml")
        now = datetime(2026, 11, 25, 20, tzinfo=UTC).timestamp()
        collect(config, now, qos_names=None, sacct_file=tmp_path / "sacct.txt", plots=False)
        return tmp_path / "data" / "data_avery.json"

    def test_the_table_from_a_saved_file(self, tmp_path: Path) -> None:
        import json

        import jsonschema

        from app.efficiency_view import NOT_RECORDED, efficiency_table
        from app.figures import resolve_view
        from collector.snapshot import SCHEMA_PATH, SCHEMA_VERSION, read_snapshot

        path = self.collect(tmp_path)
        doc = json.loads(path.read_text())
        jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
        assert doc["schema_version"] == SCHEMA_VERSION == 6
        snap = read_snapshot(path)
        rows = {r["user"]: r for r in efficiency_table(snap, resolve_view(snap, "7d"), RULES)}
        # Unrounded percentages (the page draws them with no decimals, the downloads as they are).
        assert rows["alice"]["cpu"] == pytest.approx(100 * (3 * 3600 + 58 * 60) / (4 * 3600))
        assert rows["alice"]["memory"] == pytest.approx(75.0)
        assert rows["alice"]["flags"] == []
        assert rows["alice"]["gpu"] == "no GPU jobs"
        bob = rows["bob"]
        assert bob["cpu"] == pytest.approx(0.0, abs=0.5)   # 10 CPU-minutes of 320 CPU-hours
        assert bob["flags"] == ["CPUs", "memory", "time limit"]
        assert [h.split(":")[1].strip().split(" ")[:2] for h in bob["hints"]] == \
            [["try", "fewer"], ["try", "a"], ["a", "shorter"]]
        assert bob["wasted_cpu_hours"] == pytest.approx(320 - 10 / 60, abs=0.1)
        assert NOT_RECORDED not in (bob["cpu"], bob["memory"], bob["time"])

    def test_used_series_spread_cpu_time_over_the_run_and_hold_the_peak(self,
                                                                       tmp_path: Path) -> None:
        from collector.snapshot import read_snapshot

        snap = read_snapshot(self.collect(tmp_path))
        ten = int((datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp() - snap.window_start)
                  // snap.bin_seconds)
        a, b = snap.users.index("alice"), snap.users.index("bob")
        used, held = snap.series["USED_NCPUS"], snap.series["NCPUS"]
        assert used[a, ten] == pytest.approx((3 * 3600 + 58 * 60) / 3600, abs=1e-3)   # 3.97 of 4
        assert held[a, ten] == 4
        assert used[b, ten] == pytest.approx(600 / 36000, abs=1e-3)   # 10 CPU-minutes a 10 h run
        assert snap.series["USED_MEMORY"][a, ten] == pytest.approx(6.0)   # the peak, all the run
        assert snap.series["USED_MEMORY"][b, ten] == pytest.approx(5.0)
        others = np.delete(np.arange(snap.n_bins), ten)
        assert not used[:, others].any()
        assert (used <= held + 1e-9).all()

    def test_running_jobs_are_shown_as_running_never_guessed(self, tmp_path: Path) -> None:
        import dataclasses

        from app.efficiency_view import RUNNING, efficiency_table
        from app.figures import resolve_view
        from collector.snapshot import read_snapshot

        snap = read_snapshot(self.collect(tmp_path))
        users = (*snap.users, "dora")     # dora: a job running now, none ended
        jobs = np.zeros(len(users))
        jobs[users.index("bob")], jobs[-1] = 2, 1
        current = {k: np.append(v, 0.0) for k, v in snap.current.items()}
        current["NJOBS"] = jobs
        series = {k: np.vstack([v, np.zeros((1, v.shape[1]))]) for k, v in snap.series.items()}
        snap = dataclasses.replace(snap, users=users, current=current, series=series)
        rows = {r["user"]: r for r in efficiency_table(snap, resolve_view(snap, "7d"), RULES)}
        assert rows["bob"]["running"] == 2
        assert rows["bob"]["cpu"] == pytest.approx(0.0, abs=0.5)
        assert rows["alice"]["running"] == 0
        dora = rows["dora"]
        assert (dora["jobs"], dora["running"]) == (0, 1)
        assert [dora[k] for k in ("cpu", "memory", "time", "gpu")] == [RUNNING] * 4
        assert rows["bob"]["flags"] == ["CPUs", "memory", "time limit"]
        assert rows["dora"]["flags"] == [] == rows["dora"]["hints"]

    def test_anonymised_the_table_names_only_pseudonyms(self, tmp_path: Path) -> None:
        from app.efficiency_view import efficiency_table
        from app.figures import resolve_view
        from app.privacy import anonymize, top_users
        from collector.snapshot import read_snapshot

        snap = read_snapshot(self.collect(tmp_path))
        hidden = anonymize(snap, b"k" * 32)
        names = {r["user"] for r in efficiency_table(hidden, resolve_view(hidden, "7d"), RULES)}
        assert len(names) == 2
        assert all(n.startswith("user-") for n in names)
        folded = top_users(snap, 1)
        rows = efficiency_table(folded, resolve_view(folded, "7d"), RULES)
        assert {r["user"] for r in rows} <= set(folded.users)
        assert sum(int(r["jobs"]) for r in rows) == 2   # nobody's jobs lost in the fold
