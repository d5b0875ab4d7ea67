"""Efficiency on a real Slurm that gathers job accounting (jobacct_gather/linux).

Alice runs a job that spins on both its CPUs, bob one that sleeps, carol one
that touches about half of the memory it asked for. Two collect cycles (one
while they run, one after) read their steps by id, once each; the store's
figures equal sacct's own TotalCPU and MaxRSS, the per-user efficiencies come
out in the order the workloads were built for, and each job's CPU, memory and
time efficiency agrees with what `reportseff` (a peer, from PyPI, tests only)
computes for the same job within 5 points.

The jobs run in their own QoS (`lab-eff`, added here if missing) so the
group's QoS of the other lab tests holds none of them; earlier runs of this
test leave jobs of the same three kinds in it, which keeps the order true.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from collector.collect import collect
from collector.config import load_config
from collector.efficiency import efficiency_days, efficiency_rows
from collector.snapshot import read_snapshot
from collector.store.files import load_store, store_folder
from tests.slurm_lab.lab import Lab

pytestmark = pytest.mark.slurm

QOS = "lab-eff"
SPIN = 'for i in 1 2; do timeout 15 sh -c "while :; do :; done" & done; wait'
SLEEP = "sleep 15"
# Touch 512 MiB of the 1 GiB asked for, page by page, and hold it a while.
HALF = ("/usr/bin/python3 -c 'import time; b = bytearray(512 << 20); "
        "b[::4096] = bytes(len(b[::4096])); time.sleep(12)'")


def _reportseff() -> str:
    exe = shutil.which("reportseff") or str(Path(sys.executable).parent / "reportseff")
    if not Path(exe).exists():
        raise AssertionError("reportseff is missing: `pip install .[test]` installs it")
    return exe


def _own_qos(lab: Lab) -> None:
    if QOS not in lab.run("sacctmgr", "-n", "-P", "show", "qos", "format=name").stdout.split():
        lab.run("sacctmgr", "-i", "add", "qos", QOS)
    lab.run("sacctmgr", "-i", "modify", "qos", QOS, "set", "GrpTRES=cpu=16,mem=64G")
    for user in ("alice", "bob", "carol"):
        lab.run("sacctmgr", "-i", "modify", "user", user, "set", f"qos+={QOS}")


def _sacct_usage(lab: Lab, jobs: list[str]) -> dict[str, tuple[float, float]]:
    """Each job's TotalCPU (seconds) and largest step MaxRSS (bytes), read
    plainly: sacct's own numbers, without the collector's parser."""
    out = lab.run("sacct", "--noheader", "--parsable2", "--noconvert", f"--jobs={','.join(jobs)}",
                  "--format=JobID,TotalCPU,MaxRSS").stdout
    cpu: dict[str, float] = {}
    rss: dict[str, float] = {}
    for line in out.splitlines():
        jid, total, maxrss = line.split("|")
        job = jid.split(".")[0]
        if "." not in jid:
            minutes_seconds = total.split(":")   # these jobs are short: MM:SS.mmm
            cpu[job] = int(minutes_seconds[0]) * 60 + float(minutes_seconds[1])
        elif maxrss:
            rss[job] = max(rss.get(job, 0.0), float(maxrss))
    return {job: (cpu[job], rss.get(job, 0.0)) for job in jobs}


def _peer(lab: Lab, jobs: list[str]) -> dict[str, dict[str, float]]:
    """reportseff's CPU, memory and time efficiency of each job, in percent.
    reportseff prints '---' for a CPU efficiency of 0 (and rounds a TotalCPU
    under a second down to it)."""
    out = subprocess.run([_reportseff(), "--parsable", "--no-color",
                          "--format=JobID,CPUEff,MemEff,TimeEff", *jobs],
                         env=lab.env, capture_output=True, text=True, check=True,
                         timeout=60).stdout
    lines = out.splitlines()
    assert lines[0] == "JobID|CPUEff|MemEff|TimeEff", out
    peer = {}
    for line in lines[1:]:
        jid, cpu, mem, t = line.split("|")
        peer[jid] = {"cpu": 0.0 if cpu == "---" else float(cpu), "memory": float(mem),
                     "time": float(t)}
    return peer


def test_spinning_sleeping_and_half_memory_jobs_come_out_as_built(lab: Lab,
                                                                  tmp_path: Path) -> None:
    _own_qos(lab)
    config = tmp_path / "librarian.toml"
    config.write_text('[site]\nname = "Lab"\ntimezone = "UTC"\ndata_dir = "data"\n'
                      "[collect]\nbin_seconds = 60\nwindow_days = 1\nhistory_days = 0\n"
                      f'[[qos]]\nname = "{QOS}"\n')
    common = ("--time=2",)
    jobs = {
        "alice": lab.submit("alice", QOS, SPIN, cpus=2, mem="1G", extra=common),
        "bob": lab.submit("bob", QOS, SLEEP, cpus=2, mem="1G", extra=common),
        "carol": lab.submit("carol", QOS, HALF, cpus=1, mem="1G", extra=common),
    }
    ids = list(jobs.values())
    try:
        lab.wait_until(ids, ("RUNNING",), timeout=60)
        cfg = load_config(config)
        collect(cfg, time.time(), plots=False, environ=lab.env)   # they run: nothing to say yet
        lab.wait_until(ids, ("COMPLETED",), timeout=120)
        # The steps' figures reach slurmdbd with the job's end; wait for them.
        deadline = time.monotonic() + 30
        while not all(rss > 0 for _, rss in _sacct_usage(lab, ids).values()):
            assert time.monotonic() < deadline, _sacct_usage(lab, ids)
            time.sleep(0.5)
        collect(cfg, time.time(), plots=False, environ=lab.env)
    finally:
        lab.cancel(*ids)

    # The second cycle asked the three ended jobs' steps by id (the first, a
    # backfill of an empty store, asked none of them: they were running).
    status = json.loads((tmp_path / "data" / "status.json").read_text())
    last = status["sacct"]["cycles"][-1]
    assert last["usage_rows"] >= 6, last          # 3 allocations + their batch steps

    # The store keeps one row per job with sacct's own numbers.
    store = load_store(store_folder(tmp_path / "data"))
    assert store is not None
    table = store.jobs("")    # "": the local cluster
    sacct = _sacct_usage(lab, ids)
    for user, job in jobs.items():
        (i,) = np.flatnonzero(table.job_id == int(job))
        cpu, rss = sacct[job]
        assert table.total_cpu[i] == pytest.approx(cpu, abs=1e-3), user
        assert table.peak_rss_gib[i] == pytest.approx(rss / 2**30, rel=1e-9), user

    # Per user, from the snapshot the page reads.
    snap = read_snapshot(tmp_path / "data" / f"data_{QOS}.json")
    rows = {r.user: r for r in efficiency_rows(snap.efficiency, snap.now - 3600, snap.now,
                                                cfg.efficiency)}
    assert set(jobs) <= set(rows)
    alice, bob, carol = rows["alice"], rows["bob"], rows["carol"]
    # Spins (on a shared 2-core machine it may get less than all of a core); sleeps.
    assert alice.cpu > 0.5 > 0.1 > bob.cpu
    assert alice.cpu > carol.cpu > bob.cpu
    assert 0.4 < carol.memory < 0.6                              # half of what it asked
    assert carol.memory > 3 * max(alice.memory, bob.memory)
    for r in (alice, bob, carol):
        assert 0.05 < r.time < 0.3                               # ~15 s of a 2-minute limit

    # Each job against the peer, within 5 points: Librarian's rules applied to
    # the one job (its store row, through the same sums the page reads).
    peer = _peer(lab, ids)
    days = np.array([snap.now - 86400, snap.now + 1.0])
    for user, job in jobs.items():
        one = table.take(np.flatnonzero(table.job_id == int(job)))
        (ours,) = efficiency_rows(efficiency_days(one, days, snap.now + 1.0), days[0], snap.now,
                                  cfg.efficiency)
        # reportseff reads TotalCPU to the whole second ('---' below one), so
        # its CPU figure is short by up to a second of the job's CPU-seconds.
        (i,) = np.flatnonzero(table.job_id == int(job))
        resolution = {"cpu": 100.0 / (table.elapsed[i] * table.cpus[i]), "memory": 0.0,
                      "time": 0.0}
        for key in ("cpu", "memory", "time"):
            value = 100 * getattr(ours, key)
            assert abs(value - peer[job][key]) <= 5 + resolution[key], \
                (user, key, value, peer[job])
