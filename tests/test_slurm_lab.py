"""`librarian collect` against a real Slurm with accounting (the lab, tests/slurm_lab/).

Real jobs run as alice, bob and carol in the QoS avery and avery-b: different
CPU counts, memory and GPUs, a job array, a failing job, a cancelled one, one
that times out, one pending on the QoS limit, one held, a rejected
submission. The collector's snapshots are checked against sacct's own
report of the same jobs, read separately (epoch times, ElapsedRaw x resources).

Under CI (CI=true) a missing lab fails these tests; elsewhere they skip and
say how to start it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from collector.binning import make_window
from tests.slurm_lab.lab import FINISHED, Lab, Row

pytestmark = pytest.mark.slurm

BIN = 60
OBS = ("NCPUS", "NGPUS", "MEMORY", "NJOBS")




class Workload:
    """The jobs of this module, submitted once at its start."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        s = lab.submit
        self.alice_gpu = s("alice", "avery", "sleep 6", cpus=4, mem="8G", extra=("--gres=gpu:2",))
        self.alice_array = s("alice", "avery-b", "sleep 3", cpus=1, mem="1G", extra=("--array=1-3",))
        self.bob_big = s("bob", "avery", "sleep 8", cpus=8, mem="16G", extra=("--gpus=1",))
        self.bob_fails = s("bob", "avery", "sleep 2; exit 3", cpus=2, mem="2G")
        self.carol_cancelled = s("carol", "avery", "sleep 300", cpus=2, mem="1G")
        self.carol_timeout = s("carol", "avery", "sleep 300", cpus=1, mem="1G", extra=("--time=1",))
        # 20 CPUs > avery-b's GrpTRES cpu=16: pends on the QoS limit for ever.
        self.alice_pending = s("alice", "avery-b", "sleep 5", cpus=20, mem="4G")
        self.bob_held = s("bob", "avery", "sleep 5", cpus=1, mem="1G", extra=("--hold",))
        rejected = lab.run("sbatch", "--uid=carol", "--gid=carol", "-A", "lab", "--qos=avery",
                           "--gres=gpu:9", "--chdir=/tmp", "--wrap", "sleep 1", check=False)
        assert rejected.returncode != 0, "a request for 9 GPUs on an 8-GPU node must be refused"
        lab.wait_until([self.carol_cancelled], ("RUNNING",), timeout=60)
        time.sleep(2)  # let it hold its CPUs for a moment before the cancel
        lab.cancel(self.carol_cancelled)

    @property
    def finishing(self) -> list[str]:
        return [self.alice_gpu, self.alice_array, self.bob_big, self.bob_fails,
                self.carol_cancelled, self.carol_timeout]

    def wait(self) -> list[Row]:
        # The time limit is 1 minute; slurmctld notices within its 30 s sweep.
        return self.lab.wait_until(self.finishing, FINISHED, timeout=240)


@pytest.fixture(scope="module")
def workload(lab: Lab):
    w = Workload(lab)
    yield w
    lab.cancel(w.alice_pending, w.bob_held, *w.finishing)


def collect(lab: Lab, folder: Path, now: int) -> dict[str, dict]:
    """Run the real command against the lab's sacct; return the snapshots by QoS."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "librarian.toml").write_text(
        '[site]\nname = "Lab"\ntimezone = "America/New_York"\ndata_dir = "data"\n'
        f"[collect]\nbin_seconds = {BIN}\nwindow_days = 1\nhistory_days = 0\nsacct_timeout_seconds = 60\n"
        '[[qos]]\nname = "avery"\n[[qos]]\nname = "avery-b"\n')
    exe = Path(sys.executable).with_name("librarian")
    out = subprocess.run([str(exe), "collect", "--config", str(folder / "librarian.toml"),
                          "--now", str(now), "--no-plots", "-v"],
                         env=lab.env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "--allusers --allocations --duplicates" in out.stderr  # -v logs the command
    return {q: json.loads((folder / "data" / f"data_{q}.json").read_text())
            for q in ("avery", "avery-b")}


def used_seconds(snapshot: dict, now: int) -> dict[str, dict[str, float]]:
    """Per observable and user: resource-seconds in the snapshot (value x bin length)."""
    window = make_window(now, BIN, snapshot["metadata"]["n_bins"])
    lengths = window.bin_lengths()
    return {o: {u: float(sum(v * n for v, n in zip(values, lengths, strict=True)))
                for u, values in snapshot["observables"][o].items()} for o in OBS}


def expected_seconds(rows: list[Row], now: int, window_start: int) -> dict[str, dict[str, float]]:
    """The same from sacct's own numbers: ElapsedRaw x resources (running: until now)."""
    out: dict[str, dict[str, float]] = {o: defaultdict(float) for o in OBS}
    for r in rows:
        if r.start is None:
            continue  # never started: pending, held, cancelled while pending
        stop = r.start + r.elapsed if r.end is not None else now
        seconds = max(0, min(stop, now) - max(r.start, window_start))
        for o, amount in zip(OBS, (r.cpus, r.gpus, r.mem_gib, 1), strict=True):
            out[o][r.user] += amount * seconds
    return out


def assert_same_usage(snapshots: dict[str, dict], lab: Lab, now: int) -> None:
    for qos, snap in snapshots.items():
        window_start = make_window(now, BIN, snap["metadata"]["n_bins"]).start
        rows = lab.rows(start=window_start, end=now, qos=qos)
        expected = expected_seconds(rows, now, window_start)
        got = used_seconds(snap, now)
        for o in OBS:
            users = {u for u, v in expected[o].items() if v > 0} | {u for u, v in got[o].items() if v > 0}
            for u in users:
                # Snapshot values carry 4 decimals: allow that rounding over 1440 bins.
                assert got[o].get(u, 0) == pytest.approx(expected[o].get(u, 0), abs=1.0 + 0.06 * BIN), \
                    f"{qos} {o} {u}: snapshot {got[o].get(u, 0):.2f} != sacct {expected[o].get(u, 0):.2f}"


def test_a_running_job_counts_up_to_now_then_to_its_end(lab: Lab, workload: Workload,
                                                       tmp_path: Path) -> None:
    job = lab.submit("carol", "avery-b", "sleep 12", cpus=3, mem="3G")
    lab.wait_until([job], ("RUNNING",), timeout=60)
    time.sleep(3)
    now = int(time.time())
    first = collect(lab, tmp_path / "first", now)
    mine = used_seconds(first["avery-b"], now)["NCPUS"]["carol"]
    assert first["avery-b"]["current_usage"]["carol"]["NCPUS"] == 3
    assert first["avery-b"]["current_usage"]["carol"]["MEMORY"] == 3
    assert_same_usage(first, lab, now)

    (done,) = lab.wait_until([job], FINISHED, timeout=60)
    later = int(time.time()) + 1
    second = collect(lab, tmp_path / "second", later)
    assert second["avery-b"]["current_usage"].get("carol", {}).get("NCPUS", 0) == 0
    grown = used_seconds(second["avery-b"], later)["NCPUS"]["carol"] - mine
    # From the first collection to the job's end, 3 CPUs more.
    assert grown == pytest.approx(3 * (done.start + done.elapsed - now), abs=3)
    assert_same_usage(second, lab, later)


def test_collected_usage_equals_sacct_for_every_user(lab: Lab, workload: Workload,
                                                     tmp_path: Path) -> None:
    rows = {r.job_id: r for r in workload.wait()}
    assert rows[workload.carol_cancelled].state == "CANCELLED"
    assert rows[workload.carol_timeout].state == "TIMEOUT"
    assert rows[workload.bob_fails].state == "FAILED"
    assert rows[workload.alice_gpu].gpus == 2
    assert rows[workload.bob_big].gpus == 1
    now = int(time.time()) + 1
    snapshots = collect(lab, tmp_path, now)
    assert_same_usage(snapshots, lab, now)

    # The known jobs are there with their resources, in their own QoS.
    avery = used_seconds(snapshots["avery"], now)
    assert avery["NGPUS"]["alice"] >= 2 * rows[workload.alice_gpu].elapsed - 1
    assert avery["MEMORY"]["bob"] >= 16 * rows[workload.bob_big].elapsed - 1
    assert "alice" in snapshots["avery-b"]["users"]  # the array tasks


def test_pending_held_and_refused_jobs_count_nothing(lab: Lab, workload: Workload,
                                                     tmp_path: Path) -> None:
    workload.wait()
    (pending,) = lab.rows(job_ids=[workload.alice_pending])
    (held,) = lab.rows(job_ids=[workload.bob_held])
    assert pending.state == "PENDING"
    assert pending.start is None
    assert held.state == "PENDING"
    assert held.start is None
    now = int(time.time()) + 1
    snapshots = collect(lab, tmp_path, now)
    # Nothing of this module runs at now; the pending 20-CPU job is not current usage.
    for snap in snapshots.values():
        for user, usage in snap["current_usage"].items():
            assert usage["NCPUS"] == 0, f"{snap['metadata']['qos']}: {user} shows {usage} running"
    # alice's avery-b CPU time is the array's 3 x 1 CPU x ElapsedRaw, plus earlier
    # runs' jobs: never the pending job's 20 CPUs.
    window_start = make_window(now, BIN, 1440).start
    rows = lab.rows(start=window_start, end=now, qos="avery-b")
    started = [r for r in rows if r.user == "alice" and r.start is not None]
    got = used_seconds(snapshots["avery-b"], now)["NCPUS"]["alice"]
    assert got == pytest.approx(sum(r.cpus * r.elapsed for r in started), abs=5)
    # Slurm may stamp a pending job cancelled mid-scheduling with Start = End:
    # it held nothing, and must count nothing.
    assert all(r.cpus != 20 or r.elapsed == 0 for r in started)
