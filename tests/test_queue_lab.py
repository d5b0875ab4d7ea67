"""The queue on a real Slurm: a group at its QoS CPU limit, a member waiting on it.

avery's GrpTRES is set to cpu=4 for the test (and put back): alice's 4-CPU
job fills it, bob's job pends on QOSGrpCpuLimit. A cycle then shows bob's
queued CPUs, the reason in words, alice as the holder and when her job's
time limit returns the CPUs; once alice's job ends and bob's has run, his
wait is in the wait history, attributed to the group limit, and the hours at
the limit match what accounting says alice's job ran.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app.figures import View
from app.queue_view import limit_sentences, pressure_rows, queue_table, wait_rows
from collector.collect import collect
from collector.config import load_config
from collector.snapshot import read_snapshot
from tests.slurm_lab.lab import Lab

pytestmark = pytest.mark.slurm

LIMIT = "GrpTRES=cpu=430,gres/gpu=39,mem=3359G"   # the lab's avery (tests/slurm_lab/up.sh)


def _reason(lab: Lab, job: str) -> str:
    return lab.run("squeue", "--noheader", "--jobs", job, "--format=%T|%r",
                   check=False).stdout.strip()


def _cycle(lab: Lab, config: Path) -> object:
    collect(load_config(config), time.time(), plots=False, environ=lab.env)
    return read_snapshot(config.parent / "data" / "data_avery.json")


def test_a_member_waiting_on_the_group_limit_is_seen_named_and_timed(lab: Lab,
                                                                    tmp_path: Path) -> None:
    config = tmp_path / "librarian.toml"
    config.write_text('[site]\nname = "Lab"\ntimezone = "UTC"\ndata_dir = "data"\n'
                      "[collect]\nbin_seconds = 60\nwindow_days = 1\nhistory_days = 0\n"
                      '[[qos]]\nname = "avery"\n')
    lab.run("sacctmgr", "-i", "modify", "qos", "avery", "set", "GrpTRES=cpu=4")
    jobs: list[str] = []
    t0 = int(time.time())   # the lab's earlier jobs are in the window too: look from here
    try:
        alice = lab.submit("alice", "avery", "sleep 25", cpus=4, extra=("--time=1",))
        jobs.append(alice)
        lab.wait_until([alice], ("RUNNING",), timeout=60)
        bob_submitted = time.time()
        bob = lab.submit("bob", "avery", "sleep 3", cpus=2)
        jobs.append(bob)
        deadline = time.monotonic() + 60
        while "QOSGrpCpuLimit" not in _reason(lab, bob):
            assert time.monotonic() < deadline, _reason(lab, bob)
            time.sleep(0.5)

        while not lab.rows(job_ids=[bob]):   # accounting learns of a new job a moment later
            assert time.monotonic() < deadline
            time.sleep(0.5)
        snap = _cycle(lab, config)   # bob waits on the group's CPU limit
        assert snap.queue is not None
        assert snap.queue.known
        (row,) = [r for r in queue_table(snap) if r["user"] == "bob"]
        assert row["jobs"] == 1
        assert row["cpus"] == 2
        assert row["reason"] == "the group is at its QoS CPU limit"
        bob_i = snap.users.index("bob")
        assert snap.current["QUEUED_NCPUS"][bob_i] == 2
        (sentence,) = limit_sentences(snap)
        (alice_row,) = lab.rows(job_ids=[alice])
        assert alice_row.start is not None
        frees = time.strftime("%H:%M", time.gmtime(alice_row.start + 60))
        assert re.fullmatch(rf"avery holds 4 of 4 CPUs \(alice 4\); 1 job waits for CPUs; "
                            rf"running jobs' time limits return the first CPU by {frees} "
                            r"at the latest\.", sentence), sentence

        (ran,) = lab.wait_until([bob], ("COMPLETED",), timeout=120)
        (alice_done,) = lab.wait_until([alice], ("COMPLETED",), timeout=30)
        snap = _cycle(lab, config)   # bob ran: his wait is history now
        view = View(t0, snap.now, "custom")
        # The wait history is kept per user and day: bob's cells of today hold
        # this job (and the lab's earlier ones, which no squeue saw waiting).
        w = snap.waits
        mine = w.user == w.users.index("bob")
        assert w.jobs[mine].sum() >= 1
        assert w.seen_limit[mine].sum() == 1            # squeue's reason, kept in the store
        assert ran.start is not None
        waited = ran.start - bob_submitted
        assert w.at_limit[mine].sum() >= 0.5 * waited - 2   # he waited while alice held it
        (bob_row,) = [r for r in wait_rows(snap, view) if r["user"] == "bob"]
        assert bob_row["seen_limit"] == 1
        assert ran.start is not None
        assert alice_done.end is not None
        (cpu,) = [r for r in pressure_rows(snap, view) if r["key"] == "NCPUS"]
        # At the limit exactly while alice's 4 CPUs ran (the limit was 4 all along).
        assert round(cpu["at_limit_h"], 1) == round(alice_done.elapsed / 3600, 1)   # unrounded now
        first = (t0 - snap.window_start) // snap.bin_seconds
        at_limit = float(snap.pressure["NCPUS"].at_limit[first:].sum())
        # The bin holding t0 may hold an earlier job's last seconds at 4 CPUs too.
        before = t0 - (snap.window_start + first * snap.bin_seconds)
        assert alice_done.elapsed - 2 <= at_limit <= alice_done.elapsed + before + 2
    finally:
        lab.cancel(*jobs)
        lab.run("sacctmgr", "-i", "modify", "qos", "avery", "set", LIMIT)
