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
from typing import Any

from collector.collect import CollectError, collect
from collector.config import Config
from collector.jobtable import concat
from collector.lock import LockBusy
from collector.slurm import SlurmError, run_slurm, slurm_tool
from collector.snapshot import Snapshot, SnapshotError, read_snapshot, snapshot_path
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

    def do_alerts() -> str:
        events = check_alerts(config, time.time() if now is None else now)
        return f"{len(events)} message(s): " + ", ".join(f"{e.kind} {e.key}" for e in events) \
            if events else "nothing new"

    def do_notify() -> str:
        from app.notify import deliver

        report = deliver(config)
        if not report.ok:
            raise RuntimeError(report.summary())
        return report.summary()

    step("collect", do_collect)
    step("export", do_export)
    if config.deploy:
        step("deploy", do_deploy)
    if config.alerts.any:
        step("alerts", do_alerts)
    if config.notify.configured:
        step("notify", do_notify)   # last: collect and export never wait on a mail server
    return results


def read_snapshots(config: Config) -> tuple[list[Snapshot], list[tuple[str, str]]]:
    """Every panel's snapshot that can be read, and (panel, why) for the others."""
    snaps, missing = [], []
    for p in config.panels:
        try:
            snaps.append(read_snapshot(snapshot_path(config.site.data_dir, p.qos, p.file_cluster)))
        except (OSError, SnapshotError) as err:
            missing.append((p.label, str(err)))
    return snaps, missing


def check_alerts(config: Config, now: float) -> list[Any]:
    """Check the alert rules, update data_dir/alerts.json, and put each start
    and clear in the outbox (when a channel is configured). The events."""
    from app import alerts
    from app.notify import Message, channels_of, enqueue

    data_dir = config.site.data_dir
    snaps, _ = read_snapshots(config)
    jobs = None
    if config.alerts.idle_gpu_hours:
        try:
            from collector.store import load_store, store_folder
            store = load_store(store_folder(data_dir))
            jobs = concat(list(store.hot.values())) if store is not None and store.hot else None
        except (OSError, StoreCorrupt) as err:
            log.warning("alerts: the job store cannot be read (%s): idle GPUs not checked", err)
    found = alerts.conditions(config.alerts, snaps, read_status(data_dir), now,
                              config.app.collect_interval_minutes, jobs)
    state, events = alerts.step(alerts.load_state(data_dir), found, now,
                                config.alerts.rate_limit_minutes)
    channels = channels_of(config)
    for e in events:
        subject, body = alerts.message_text(e, config.site.name, config.site.timezone)
        if channels:
            enqueue(data_dir, Message(e.id_key, subject, body, body, created=now), channels)
    alerts.save_state(data_dir, state)   # after the outbox: a crash re-sends, never loses
    return events


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


def _scrontab_checks(config: Config) -> list[Check]:
    """The caller's scrontab: Librarian's lines present, and how each job last ran."""
    import getpass

    from collector.schedule import LAST_RUN_FORMAT, installed_lines, last_runs

    bin_dir, timeout = config.site.slurm_bin, config.ops.command_timeout_seconds
    names = config.ops.job_names
    wanted = names[:2] + ((names[2],) if config.notify.configured else ())
    try:
        text = run_slurm([slurm_tool(bin_dir, "scrontab"), "-l"], timeout,
                         timeout_key="ops.command_timeout_seconds").decode("utf-8", "replace")
    except SlurmError as err:
        if "not found" in str(err):
            return [Check("scrontab", True, "no scrontab command here: run Librarian from the "
                                            "cron or systemd lines `librarian scrontab` prints")]
        if "no crontab" in err.stderr.lower():
            text = ""
        else:
            return [Check("scrontab", False, str(err), "scrontab must reach slurmctld "
                                                       "(ScronParameters=enable on the cluster)")]
    found = installed_lines(text, wanted)
    missing = [n for n in wanted if n not in found]
    checks = [Check("scrontab has Librarian's lines", not missing,
                    f"{', '.join(found) or 'none'} installed" + (
                        f"; missing: {', '.join(missing)}" if missing else ""),
                    "librarian scrontab > lines.txt && scrontab lines.txt  (replaces your "
                    "scrontab: merge by hand if it holds other lines)" if missing else "")]
    check, out = _slurm_check(
        "scrontab jobs' last runs",
        [slurm_tool(bin_dir, "sacct"), "-X", "-n", "-P", f"--user={getpass.getuser()}",
         f"--name={','.join(found) or wanted[0]}", "--starttime=now-2days",
         f"--format={LAST_RUN_FORMAT}"],
        "", "sacct must answer for your own jobs", timeout)
    if not check.ok:
        return [*checks, check]
    runs = last_runs(out)
    for name in found:
        r = runs.get(name)
        if r is None:
            weekly = name == names[2]   # the digest may well not have run in two days
            checks.append(Check(f"last {name}", weekly, "no run in the last two days",
                                "" if weekly else "check the line with `scrontab -l`, "
                                                  "and `squeue --me`"))
            continue
        checks.append(Check(f"last {name}", r.ok,
                            f"job {r.job_id} {r.state}, exit {r.exit_code}, last started "
                            f"{r.start or '-'}, ended {r.end or '-'}",
                            "" if r.ok else f"see {config.site.data_dir / 'logs'}/"
                                            f"{name}-{r.job_id}.log"))
    return checks


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
    checks += _scrontab_checks(config)
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
