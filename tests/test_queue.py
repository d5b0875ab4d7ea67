"""The queue: reasons in words, squeue's lines, the queue table, limit pressure
and waits from exact intervals, the sentence, and a cycle whose squeue fails."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.figures import View, usage_figure
from app.queue_view import limit_sentences, pressure_rows, queue_note, queue_table, wait_rows
from collector import reasons
from collector.binning import make_window
from collector.collect import collect
from collector.config import load_config
from collector.jobtable import JobTable
from collector.pressure import analyse, at_limit_now, tolerance
from collector.snapshot import SCHEMA_VERSION, read_snapshot
from collector.squeue import SEP, build_squeue_args, parse_squeue, queue_rows
from collector.status import read_status
from collector.store.records import carry_seen, merge, observe_reasons

H = 3600


def jobs(rows: list[dict], users: tuple[str, ...] = ("alice", "bob"),
         reason_names: tuple[str, ...] = ("",)) -> JobTable:
    """Jobs from dicts of user, submit, start, end, cpus, gpus (hours as numbers)."""
    n = len(rows)

    def col(key: str, default: float = np.nan) -> np.ndarray:
        return np.array([float(r.get(key, default)) * (H if key in
                         ("submit", "start", "end", "eligible", "timelimit") else 1)
                         for r in rows])

    return JobTable.build(
        job_id=np.array([r.get("id", i + 1) for i, r in enumerate(rows)], dtype=np.int64),
        user=np.array([users.index(r["user"]) for r in rows], dtype=np.int64),
        qos=np.zeros(n, dtype=np.int64), state=np.zeros(n, dtype=np.int64),
        submit=col("submit"), start=col("start"), end=col("end"), elapsed=np.zeros(n),
        nnodes=np.ones(n), cpus=col("cpus", 1), gpus=col("gpus", 0), mem_gib=col("mem", 1),
        eligible=col("eligible"), timelimit=col("timelimit"), tasks=col("tasks", 1),
        reason=np.array([r.get("reason", 0) for r in rows], dtype=np.int64),
        reasons=reason_names, users=users, qos_names=("avery",), states=("COMPLETED",))


class TestReasons:
    @pytest.mark.parametrize(("reason", "words", "bit"), [
        ("QOSGrpCpuLimit", "the group is at its QoS CPU limit", reasons.GROUP_CPU),
        ("QOSGrpGRES", "the group is at its QoS GPU limit", reasons.GROUP_GPU),
        ("QOSGrpMemLimit", "the group is at its QoS memory limit", reasons.GROUP_MEM),
        ("QOSMaxCpuPerUserLimit", "this user is at the per-user CPU limit", reasons.PER_USER),
        ("QOSMaxGRESPerUser", "this user is at the per-user GPU limit", reasons.PER_USER),
        ("Priority", "other jobs have priority (fair share)", reasons.PRIORITY),
        ("Resources", "waiting for free nodes", reasons.RESOURCES),
        ("(JobHeldAdmin)", "held by an administrator", reasons.HELD),
        ("AssocGrpGRES", "the account is at its GPU limit", reasons.ACCOUNT),
        ("QOSGrpNodeLimit", "the group is at its QoS node limit", reasons.GROUP_OTHER),
        ("SomethingNew", "SomethingNew", reasons.OTHER),
        ("None", "", 0),
    ])
    def test_words_and_kinds(self, reason: str, words: str, bit: int) -> None:
        assert reasons.classify(reason) == (bit, words)

    def test_holds_begin_times_and_dependencies_are_not_waiting_for_resources(self) -> None:
        for r in ("JobHeldUser", "JobHeldAdmin", "BeginTime", "Dependency"):
            assert reasons.not_eligible(r)
        for r in ("Priority", "QOSGrpCpuLimit", "Resources", ""):
            assert not reasons.not_eligible(r)


def squeue_line(*cells: str) -> str:
    return "".join(c + SEP for c in cells)


class TestSqueue:
    def test_arguments_ask_once_for_every_qos(self) -> None:
        args = build_squeue_args("squeue", ["avery", "avery-b"], "hpg")
        assert args[:4] == ["squeue", "--noheader", "--array", "--states=PENDING"]
        assert "--qos=avery,avery-b" in args
        assert "--clusters=hpg" in args
        fmt = next(a for a in args if a.startswith("--Format="))
        assert fmt.count(SEP) == 7

    def test_lines_read_and_bad_ones_counted_and_skipped(self) -> None:
        text = "\n".join([
            "CLUSTER: hpg",
            squeue_line("17", "bob", "avery", "PENDING", "QOSGrpCpuLimit",
                        "cpu=4,mem=8G,node=1,billing=4,gres/gpu=2", "2026-11-25T10:00:00"),
            "garbage without separators",
            squeue_line("18", "bob", "avery", "PENDING", "Priority", "cpu=x", "2026-11-25T10:00:00"),
            squeue_line("19", "ann", "avery-b", "PENDING", "JobHeldUser", "cpu=1,mem=512M",
                        "2026-11-25T11:00:00"),
            "",
        ])
        q = parse_squeue(text.encode())
        assert [j.job_id for j in q.jobs] == [17, 19]
        assert q.bad_lines == 2
        assert q.bad_line_numbers == (3, 4)
        j = q.jobs[0]
        assert (j.user, j.qos, j.reason, j.cpus, j.gpus, j.mem_gib) == \
            ("bob", "avery", "QOSGrpCpuLimit", 4, 2, 8)
        assert [x.job_id for x in q.of("avery-b")] == [19]

    def test_queue_rows_count_held_apart_and_name_the_main_reason(self) -> None:
        now = 20 * H
        line = lambda i, u, r, c, t: squeue_line(str(i), u, "q", "PENDING", r, f"cpu={c},mem=1G",  # noqa: E731
                                                 f"1970-01-01T{t:02d}:00:00")
        q = parse_squeue("\n".join([line(1, "bob", "QOSGrpCpuLimit", 4, 10),
                                    line(2, "bob", "QOSGrpCpuLimit", 4, 12),
                                    line(3, "bob", "Priority", 2, 18),
                                    line(4, "bob", "JobHeldUser", 64, 1),
                                    line(5, "ann", "BeginTime", 1, 19)]).encode())
        rows = {r.user: r for r in queue_rows(q.jobs, now)}
        bob, ann = rows["bob"], rows["ann"]
        assert (bob.jobs, bob.cpus, bob.held) == (3, 10, 1)
        assert bob.longest_wait == 10 * H          # the held job is not a wait
        assert bob.reason == "QOSGrpCpuLimit"
        assert bob.reason_words == "the group is at its QoS CPU limit"
        assert (ann.jobs, ann.held, ann.reason) == (0, 1, "BeginTime")


class TestPressure:
    """Limit 4 CPUs. alice holds 4 from 2 h to 6 h; bob waits for 2 CPUs from
    3 h and runs 6 h to 8 h; carol's 1-CPU job waits from 1 h, held, never runs."""

    def table(self) -> JobTable:
        return jobs([
            {"user": "alice", "submit": 2, "start": 2, "end": 6, "cpus": 4, "timelimit": 5},
            {"user": "bob", "submit": 3, "start": 6, "end": 8, "cpus": 2, "gpus": 1},
            {"user": "carol", "submit": 1, "cpus": 1, "reason": 1},
        ], users=("alice", "bob", "carol"), reason_names=("", "JobHeldUser"))

    def test_hours_at_the_limit_waiting_and_peak_per_bin(self) -> None:
        w = make_window(10 * H, H, 10)
        a = analyse(self.table(), w, {"NCPUS": ((0, 4.0),), "NGPUS": ((0, None),)})
        assert set(a.pressure) == {"NCPUS"}       # no GPU limit: nothing to be at
        p = a.pressure["NCPUS"]
        assert (p.at_limit / H).tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
        assert (p.waiting_at_limit / H).tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
        assert p.peak.tolist() == [0, 0, 4, 4, 4, 4, 2, 2, 0, 0]

    def test_a_limit_raised_mid_window_ends_the_pressure(self) -> None:
        w = make_window(10 * H, H, 10)
        a = analyse(self.table(), w, {"NCPUS": ((0, 4.0), (4 * H + 1800, 100.0))})
        assert a.pressure["NCPUS"].at_limit.sum() == pytest.approx(2.5 * H)

    def test_within_one_unit_or_one_percent(self) -> None:
        assert tolerance(8) == 1
        assert tolerance(2000) == 20
        big = jobs([{"user": "alice", "submit": 0, "start": 0, "end": 2, "cpus": 1981}])
        w = make_window(2 * H, H, 2)
        assert analyse(big, w, {"NCPUS": ((0, 2000.0),)}).pressure["NCPUS"].at_limit.sum() == 2 * H
        less = jobs([{"user": "alice", "submit": 0, "start": 0, "end": 2, "cpus": 1980}])
        assert analyse(less, w, {"NCPUS": ((0, 2000.0),)}).pressure["NCPUS"].at_limit.sum() == 0

    def test_waits_and_their_part_at_the_limit(self) -> None:
        w = make_window(10 * H, H, 10)
        waits = analyse(self.table(), w, {"NCPUS": ((0, 4.0),)}).waits
        by_user = {waits.users[u]: (s, x) for u, s, x in
                   zip(waits.user.tolist(), waits.wait.tolist(), waits.at_limit.tolist(), strict=True)}
        assert by_user == {"alice": (0, 0), "bob": (3 * H, 3 * H)}   # carol never started

    def test_at_limit_now_names_the_holders_and_when_the_first_cpu_returns(self) -> None:
        t = self.table()
        (now,) = at_limit_now(t, 3 * H, {"NCPUS": 4.0, "NGPUS": 8.0, "MEMORY": None})
        assert now.holders == (("alice", 4.0),)
        assert now.waiting_jobs == 1                  # bob; carol is held
        assert now.frees_by == 7 * H                  # her start + 5 h limit


def _brute_force(table: JobTable, window, steps: tuple) -> dict[str, list[float]]:
    """Per bin: seconds at the CPU limit, seconds at it with a CPU job waiting,
    and the peak CPUs held, by looking at every second of the window."""
    now = window.now
    at_s, waiting_s, peak = (np.zeros(window.n_bins) for _ in range(3))
    for t in range(window.start, now):
        started = ~np.isnan(table.start) & (table.start <= t)
        stop = np.where(np.isnan(table.end), now, table.end)
        used = table.cpus[started & (t < stop)].sum()
        since = np.where(np.isnan(table.eligible), table.submit, table.eligible)
        until = np.where(np.isnan(table.start), np.where(np.isnan(table.end), now, table.end),
                         table.start)
        queued = ((since <= t) & (t < until) & (table.req_cpus > 0)).sum()
        limit = [v for when, v in steps if when <= t][-1:] or [steps[0][1]]
        limit_t = limit[0] or 0.0
        at = limit_t > 0 and used > limit_t - tolerance(limit_t)
        b = (t - window.start) // window.bin_seconds
        at_s[b] += at
        waiting_s[b] += at and queued > 0
        peak[b] = max(peak[b], used)
    return {"at": at_s.tolist(), "waiting": waiting_s.tolist(), "peak": peak.tolist()}


class TestPressureByBruteForce:
    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 240), st.integers(0, 120), st.integers(0, 120),
                              st.integers(1, 4), st.booleans(), st.booleans()),
                    min_size=1, max_size=12),
           st.lists(st.tuples(st.integers(-60, 240), st.one_of(st.none(), st.integers(1, 8))),
                    min_size=1, max_size=4),
           st.integers(1, 60))
    def test_seconds_at_the_limit_waiting_and_peak_match_every_second(
            self, rows: list, limit_steps: list, into_last_bin: int) -> None:
        """Jobs that wait, run, are still pending or still running at now, and
        a limit that changes (or is unset) at any second, before or inside
        the window: the step functions agree with a second-by-second count."""
        window = make_window(180 + into_last_bin, 60, 4)   # 4 bins, now inside the last
        now = window.now
        submit, start, end, cpus = [], [], [], []
        for sub, wait, run, n, starts, ends in rows:
            begin = sub + wait if starts and sub + wait < now else np.nan
            stop = (sub if np.isnan(begin) else begin) + run
            submit.append(min(sub, now))
            start.append(begin)
            end.append(stop if ends and stop < now else np.nan)
            cpus.append(float(n))
        n_jobs = len(rows)
        zeros = np.zeros(n_jobs, dtype=np.int64)
        table = JobTable.build(
            job_id=np.arange(1, n_jobs + 1), user=zeros, qos=zeros, state=zeros,
            submit=np.array(submit, dtype=float), start=np.array(start), end=np.array(end),
            elapsed=np.zeros(n_jobs), nnodes=np.ones(n_jobs), cpus=np.array(cpus),
            gpus=np.zeros(n_jobs), mem_gib=np.ones(n_jobs), users=("alice",),
            qos_names=("avery",), states=("COMPLETED",))
        steps = tuple((float(t), None if v is None else float(v))
                      for t, v in sorted(limit_steps, key=lambda step: step[0]))
        a = analyse(table, window, {"NCPUS": steps})
        want = _brute_force(table, window, steps)
        if "NCPUS" not in a.pressure:
            assert want["at"] == [0.0] * 4
            return
        p = a.pressure["NCPUS"]
        assert p.at_limit.tolist() == want["at"]
        assert p.waiting_at_limit.tolist() == want["waiting"]
        assert p.peak.tolist() == want["peak"]


class TestWaitDays:
    def test_percentiles_from_the_histogram_are_within_a_bin_of_the_exact_ones(self) -> None:
        from collector.pressure import WAIT_EDGES, percentile

        rng = np.random.default_rng(5)
        waits = rng.lognormal(np.log(600), 1.5, size=5000)
        hist = np.bincount(np.searchsorted(WAIT_EDGES, waits, side="right") - 1,
                           minlength=len(WAIT_EDGES))
        for q in (50, 90):
            exact = float(np.percentile(waits, q))
            assert percentile(hist, q) == pytest.approx(exact, rel=0.09), q
        assert percentile(np.zeros(len(WAIT_EDGES)), 50) == 0

    def test_bins_and_days_by_arithmetic_equal_a_binary_search(self) -> None:
        from collector.pressure import WAIT_EDGES, _day_index, local_days, wait_bin

        rng = np.random.default_rng(1)
        waits = np.concatenate([rng.lognormal(6, 3, 20000), WAIT_EDGES, WAIT_EDGES * (1 - 1e-12),
                                [0, 0.5, 1e12]])
        expected = np.clip(np.searchsorted(WAIT_EDGES, waits, side="right") - 1, 0, 100)
        np.testing.assert_array_equal(wait_bin(waits), expected)
        days = local_days(1_772_900_000, 1_772_900_000 + 40 * 86400, "America/New_York")
        times = np.concatenate([rng.uniform(days[0], days[-1] - 1, 20000), days[:-1],
                                days[1:-1] - 1])
        np.testing.assert_array_equal(_day_index(days, times),
                                      np.searchsorted(days, times, side="right") - 1)

    def test_cells_per_user_and_local_day(self) -> None:
        from collector.pressure import Waits, local_days, wait_days

        # 2026-03-08: New York springs forward; days are local, 23 h that day.
        t0 = 1_772_946_000   # 2026-03-08T00:00-05:00
        days = local_days(t0 + 3600, t0 + 2 * 86400, "America/New_York")
        assert days[1] - days[0] == 23 * 3600
        w = Waits(("ann", "bo"), np.array([0, 0, 1]), np.array([t0 + 60, t0 + 90000, t0 + 120.0]),
                  np.array([30.0, 60.0, 10.0]), np.array([30.0, 0.0, 0.0]),
                  np.array([True, False, False]))
        d = wait_days(w, days)
        cells = sorted(zip(d.user.tolist(), d.day.tolist(), d.jobs.tolist(), d.wait.tolist(),
                           d.at_limit.tolist(), d.seen_limit.tolist(), strict=True))
        assert cells == [(0, 0, 1, 30.0, 30.0, 1), (0, 1, 1, 60.0, 0.0, 0), (1, 0, 1, 10.0, 0.0, 0)]
        assert d.histogram(d.user == 0).sum() == 2


class TestRecords:
    def test_reasons_seen_survive_a_newer_version_and_squeue_adds_its_own(self) -> None:
        old = jobs([{"user": "bob", "submit": 1, "id": 7}])
        seen = observe_reasons(old, np.array([7, 99]), ("QOSGrpCpuLimit", "Priority"))
        assert seen.reasons[seen.reason[0]] == "QOSGrpCpuLimit"
        assert int(seen.reasons_seen[0]) == reasons.GROUP_CPU
        later = jobs([{"user": "bob", "submit": 1, "start": 5, "id": 7}])  # it started
        merged = merge(seen, later)
        assert len(merged) == 1
        assert merged.start[0] == 5 * H
        assert int(merged.reasons_seen[0]) == reasons.GROUP_CPU
        assert carry_seen(JobTable.empty(), later) is later
        # A job that started is not given squeue's reasons (squeue lists only pending jobs).
        again = observe_reasons(merged, np.array([7]), ("Priority",))
        assert int(again.reasons_seen[0]) == reasons.GROUP_CPU


class TestPage:
    def test_the_sentence_table_and_pressure_card(self, tmp_path: Path) -> None:
        snap = _collected(tmp_path, squeue_prints=squeue_line(
            "12", "bob", "avery", "PENDING", "QOSGrpCpuLimit", "cpu=2,mem=1G",
            "2026-11-25T11:00:00") + "\n")
        (sentence,) = limit_sentences(snap)
        assert sentence.startswith("avery holds 4 of 4 CPUs (alice 4); 1 job waits for CPUs; "
                                   "running jobs' time limits return the first CPU by ")
        rows = queue_table(snap)
        assert rows[0]["user"] == "bob"
        assert rows[0]["reason"] == "the group is at its QoS CPU limit"
        assert queue_note(snap).startswith("Pending jobs as squeue showed them at ")
        view = View(snap.window_start, snap.now, "24h")
        (cpu,) = [r for r in pressure_rows(snap, view) if r["key"] == "NCPUS"]
        assert cpu["at_limit_h"] == pytest.approx(2.0, abs=0.01)   # alice's 4 CPUs, 10:00 to now
        assert cpu["peak_share"] == 100.0
        fig = usage_figure(snap, "NCPUS", view, show="both")
        kinds = {t["meta"] for t in fig["data"]}
        assert kinds == {"running", "queued"}
        assert all(t["hovertemplate"].endswith("queued") for t in fig["data"] if t["meta"] == "queued")
        assert fig["layout"]["yaxis"]["range"][1] >= 4        # the limit line stays in view
        only = usage_figure(snap, "NCPUS", view, show="queued")
        assert {t["meta"] for t in only["data"]} == {"queued"}
        waits = wait_rows(snap, view)   # alice's job started at once; bob's still waits
        assert [(r["user"], r["jobs"]) for r in waits] == [("alice", 1), ("All of avery", 1)]
        assert [r["median"] for r in waits] == pytest.approx([0.0, 0.0], abs=1 / 3600)  # hours

    @pytest.mark.parametrize(("how", "expect"), [
        ({"exit_code": 1, "stderr": "squeue: error: slurm_load_jobs: Unable to contact"},
         "Unable to contact"),
        ({"sleep": 5}, "did not answer within 2 s (raise ops.command_timeout_seconds"),
    ])
    def test_a_failing_or_hanging_squeue_never_stops_the_cycle(self, tmp_path: Path, how: dict,
                                                               expect: str) -> None:
        first = _collected(tmp_path, squeue_prints="")
        assert first.queue is not None
        assert first.queue.known
        snap = _collected(tmp_path, later=600, **{"squeue": how})
        assert snap.queue is not None
        assert not snap.queue.known
        assert expect in snap.queue.error
        assert snap.queue.read_at == first.now            # unknown since the last good read
        assert "unknown since" in queue_note(snap)
        step = read_status(tmp_path / "data")["steps"]["queue"]
        assert step["ok"] is False
        assert expect in step["error"]
        assert snap.series["NCPUS"].any()                 # the usage was collected all the same

    def test_an_unreadable_squeue_line_is_counted_and_skipped(self, tmp_path: Path) -> None:
        snap = _collected(tmp_path, squeue_prints="not a line\n" + squeue_line(
            "12", "bob", "avery", "PENDING", "Priority", "cpu=2,mem=1G", "2026-11-25T11:00:00"))
        assert snap.queue is not None
        assert snap.queue.skipped_lines == 1
        assert [r.user for r in snap.queue.rows] == ["bob"]
        assert "1 unreadable line(s) skipped" in queue_note(snap)


NOW = 1_764_072_000   # 2025-11-25T12:00:00Z


def _collected(site: Path, squeue_prints: str = "", later: int = 0,
               squeue: dict | None = None) -> object:
    """A live cycle with fake sacct/squeue on PATH: alice holds the 4-CPU limit
    from 10:00 (time limit 4 h); bob's 2-CPU job waits since 11:00."""
    from tests import fake_sacct

    bin_dir = site / "bin"
    sacct_text = site / "sacct.txt"
    fields = ("JobIDRaw|JobID|User|QOS|State|Submit|Start|End|ElapsedRaw|NNodes|NCPUS|ReqMem|"
              "ReqTRES|AllocTRES|Eligible|ReqCPUS|Reason|TimelimitRaw")
    sacct_text.write_text("\n".join([
        fields,
        "11|11|alice|avery|RUNNING|2025-11-25T10:00:00|2025-11-25T10:00:00|Unknown|7200|1|4|"
        "4G|cpu=4,mem=4G,node=1|cpu=4,mem=4G,node=1|2025-11-25T10:00:00|4|None|240",
        "12|12|bob|avery|PENDING|2025-11-25T11:00:00|Unknown|Unknown|0|1|2|1G|"
        "cpu=2,mem=1G,node=1||2025-11-25T11:00:00|2|Priority|60",
    ]) + "\n")
    fake_sacct.install(bin_dir, prints=sacct_text)
    if squeue is not None:
        fake_sacct.install_squeue(bin_dir, **squeue)
    else:
        fake_sacct.install_squeue(bin_dir, prints=squeue_prints)
    config = site / "librarian.toml"
    if not config.exists():
        config.write_text(f'[site]\nname = "T"\ntimezone = "UTC"\ndata_dir = "{site / "data"}"\n'
                          "[collect]\nbin_seconds = 3600\nwindow_days = 1\n"
                          "[ops]\ncommand_timeout_seconds = 2\n"
                          '[[qos]]\nname = "avery"\n'
                          "limits = { cpus = 4, gpus = 2, memory_gb = 100 }\n")
    env = {**os.environ, "PATH": fake_sacct.path_with(bin_dir)}
    collect(load_config(config), NOW + later, plots=False, environ=env)
    return read_snapshot(site / "data" / "data_avery.json")


def test_the_demo_queue_file_reads_back(tmp_path: Path) -> None:
    """`librarian collect --sacct-file --squeue-file` (what the demo runs)."""
    from collector.synth import synth_sacct, synth_squeue

    history = synth_sacct(NOW, 2, 400, n_users=5, seed=3)
    (tmp_path / "h.txt").write_bytes(history)
    (tmp_path / "q.txt").write_bytes(synth_squeue(history))
    assert parse_squeue((tmp_path / "q.txt").read_bytes()).bad_lines == 0
    config = tmp_path / "librarian.toml"
    config.write_text(f'[site]\nname = "T"\ntimezone = "UTC"\ndata_dir = "{tmp_path}"\n'
                      '[[qos]]\nname = "avery"\nlimits = { cpus = 40, gpus = 4, memory_gb = 400 }\n')
    out = subprocess.run(
        ["librarian", "collect", "--config", str(config), "--sacct-file", str(tmp_path / "h.txt"),
         "--squeue-file", str(tmp_path / "q.txt"), "--now", str(NOW), "--no-plots", "-q"],
        capture_output=True, text=True, env={**os.environ, "PATH": os.path.dirname(
            __import__("sys").executable) + os.pathsep + os.environ["PATH"]})
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "data_avery.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["queue"]["error"] == ""
    pending = sum(r["jobs"] + r["held"] for r in doc["queue"]["rows"])
    assert pending == len(parse_squeue((tmp_path / "q.txt").read_bytes()).jobs) > 0


def test_a_pending_array_row_counts_each_task_it_stands_for() -> None:
    """sacct prints one row for an array's tasks not yet started (seen in the lab)."""
    from collector.binning import bin_usage
    from collector.parse import array_tasks, parse_sacct

    assert (array_tasks("175_[1-4]"), array_tasks("9_[1-4,9%2]"), array_tasks("12_[0-10:2]"),
            array_tasks("5_3"), array_tasks("5")) == (4, 5, 6, 1, 1)
    header = ("JobIDRaw|JobID|User|QOS|State|Submit|Start|End|ElapsedRaw|NNodes|NCPUS|ReqMem|"
              "ReqTRES|AllocTRES|Eligible|ReqCPUS|Reason|TimelimitRaw")
    rows = ["175|175_[1-4]|bob|avery|PENDING|2025-11-25T10:00:00|Unknown|Unknown|0|1|2|1024M|"
            "billing=2,cpu=2,mem=1024M,node=1||2025-11-25T10:00:00|2|Priority|10",
            "176|175_5|bob|avery|RUNNING|2025-11-25T10:00:00|2025-11-25T11:00:00|Unknown|60|1|2|"
            "1024M|billing=2,cpu=2,mem=1024M,node=1|cpu=2,mem=1024M|2025-11-25T10:00:00|2|None|10"]
    jobs = parse_sacct(("\n".join([header, *rows]) + "\n").encode()).jobs
    assert jobs.tasks.tolist() == [4, 1]
    usage = bin_usage(jobs, make_window(NOW, H, 2))   # 10:00-12:00
    bob = usage.users.index("bob")
    assert usage.series["QUEUED_NJOBS"][bob].tolist() == [5, 4]   # 4 + task 5 until 11:00
    assert usage.series["QUEUED_NCPUS"][bob].tolist() == [10, 8]
    assert usage.current["QUEUED_NJOBS"][bob] == 4
