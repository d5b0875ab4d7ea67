"""`librarian run`: the whole cycle (collect, export, deploy), each step recorded.

What the seed's run.sh did, made visible: each step's outcome, duration and
error go to `data_dir/status.json` (collector/status.py) as soon as it ends.
A failed collect keeps the old snapshots and the cycle still exports, so the
published pages show that the data is stale, and why, rather than nothing.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from collector.collect import CollectError, collect
from collector.config import Config
from collector.lock import LockBusy
from collector.slurm import SlurmError, run_slurm, slurm_tool
from collector.status import read_status, record_step, write_status
from collector.store import StoreCorrupt, verify

log = logging.getLogger("librarian.run")


@dataclass(frozen=True)
class StepResult:
    step: str
    ok: bool
    seconds: float
    detail: str


def run_cycle(config: Config, now: float | None = None) -> list[StepResult]:
    """Run every step; raises LockBusy (nothing done) if another run holds the lock."""
    from app.deploy import deploy
    from app.export import export_site

    data_dir = config.site.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    results: list[StepResult] = []

    def step(name: str, action: Callable[[], str]) -> None:
        started = time.time()
        t = time.perf_counter()
        try:
            detail = action()
            ok, error = True, None
        except LockBusy:
            raise
        except (CollectError, OSError, RuntimeError) as err:
            detail, ok, error = str(err), False, str(err)
        seconds = time.perf_counter() - t
        write_status(data_dir, record_step(read_status(data_dir), name, ok, started, seconds,
                                           error, detail if ok else ""))
        (log.info if ok else log.error)("%s %s in %.1f s: %s", name, "done" if ok else "FAILED",
                                         seconds, detail)
        results.append(StepResult(name, ok, seconds, detail))

    def do_collect() -> str:
        report = collect(config, time.time() if now is None else now, plots=True)
        return ", ".join(f"{o.qos}: {o.users} users" for o in report.outcomes)

    def do_export() -> str:
        report = export_site(config, config.export_dir)
        return f"{config.export_dir}: {len(report.written)} file(s) changed"

    def do_deploy() -> str:
        outcomes = deploy(config)
        failed = [f"{o.target}: {o.detail}" for o in outcomes if not o.ok]
        if failed:
            raise RuntimeError("; ".join(failed))
        return "; ".join(f"{o.target}: {o.detail}" for o in outcomes)

    step("collect", do_collect)
    step("export", do_export)
    if config.deploy:
        step("deploy", do_deploy)
    return results


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _slurm_check(name: str, args: list[str], ok_detail: str, fix: str, timeout: float
                 ) -> tuple[Check, str]:
    """(the check, what the command printed): a command that cannot run, fails
    or hangs is a failed check with its fix, never a traceback."""
    try:
        out = run_slurm(args, timeout).decode("utf-8", "replace")
    except SlurmError as err:
        return Check(name, False, str(err), fix), ""
    return Check(name, True, ok_detail), out


def _store_check(config: Config) -> Check:
    """The job store: readable, and how far behind the clock it is."""
    try:
        health = verify(config.site.data_dir)
    except StoreCorrupt as err:
        return Check("job store", False, str(err),
                     "nothing to do by hand: the next collect sets it aside and rebuilds it")
    if health is None:
        return Check("job store", True, "none yet: the first collect backfills the window")
    behind = time.time() - health.synced_to
    detail = f"{health.records:,} records, synced {behind / 60:.0f} min ago"
    late = behind > 3 * 60 * config.app.collect_interval_minutes
    return Check("job store", not late, detail,
                 "collect has not run for 3 cycles: check `librarian run` in scrontab "
                 "and data_dir/logs" if late else "")


def doctor(config: Config) -> list[Check]:
    """Check what a cycle needs; each problem comes with the fix to try."""
    from app.deploy import DeployError, check_reachable

    bin_dir = config.site.slurm_bin
    timeout = config.ops.command_timeout_seconds
    checks = [Check("configuration", True, f"{config.source}: {len(config.qos)} QoS")]
    where = f"the folder in site.slurm_bin ({bin_dir})" if bin_dir else "PATH"
    check, _ = _slurm_check(
        "sacct answers", [slurm_tool(bin_dir, "sacct"), "--noheader", "--allocations",
                          "--starttime=now-1hours", "--format=JobID"],
        "slurmdbd reachable", f"sacct must run from {where} and reach slurmdbd "
                              "(try it by hand; set site.slurm_bin)", timeout)
    checks.append(check)
    check, out = _slurm_check(
        "sacctmgr answers", [slurm_tool(bin_dir, "sacctmgr"), "--noheader", "--parsable2",
                             "show", "qos", "format=Name"],
        "QoS list read", f"sacctmgr must run from {where}", timeout)
    checks.append(check)
    if check.ok:
        known = set(out.split())
        missing = [q.name for q in config.qos if q.name not in known]
        checks.append(Check("configured QoS exist", not missing,
                            "all found" if not missing else f"unknown to Slurm: {', '.join(missing)}",
                            "" if not missing else "fix the [[qos]] names (sacctmgr show qos format=name)"))
    check, _ = _slurm_check("squeue answers", [slurm_tool(bin_dir, "squeue"), "--me", "--noheader"],
                            "slurmctld reachable",
                            f"squeue must run from {where} and reach slurmctld", timeout)
    checks.append(check)
    data_dir = config.site.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir):
            pass
        checks.append(Check("data folder writable", True, str(data_dir)))
    except OSError as err:
        checks.append(Check("data folder writable", False, f"{data_dir}: {err.strerror}",
                            "create it, or point site.data_dir at a folder you can write"))
    checks.append(_store_check(config))
    for target in config.deploy:
        name = f"deploy target {target.name!r} reachable"
        try:
            checks.append(Check(name, True, check_reachable(target)))
        except DeployError as err:
            checks.append(Check(name, False, str(err), "check the address and your ssh key or git "
                                                       "credentials (they must work without a prompt)"))
    return checks
