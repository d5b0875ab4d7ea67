"""The `librarian` command: the only place that prints for people and exits.

Exit status: 0 done; 1 the collection failed (nothing was written);
2 bad usage or configuration; 75 another run holds the data folder's lock
(EX_TEMPFAIL: try again later).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from zoneinfo import ZoneInfo

from collector import __version__
from collector.config import ConfigError, find_config_path, load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 0, 1, 2, 75

log = logging.getLogger("librarian")


def parse_now(text: str, tz: str) -> float:
    """`--now`: epoch seconds, or ISO 8601 (a time without offset is in `tz`)."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValueError(f"not a time: {text!r}")
        return value
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use ISO 8601 such as 2026-11-25T14:00 or epoch seconds)"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=ZoneInfo(tz))
    return t.timestamp()


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    if verbosity < -1:
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("librarian: %(levelname)s: %(message)s"))
    root = logging.getLogger("librarian")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


PLUGIN_GROUP = "librarian.commands"


# The collector's own commands that need no plugin: run without importing any
# (a scrontab `collect` never loads the app's modules, nor Dash through them).
SELF_CONTAINED = ("collect", "watchdog", "scrontab")


def _parser(plugins: bool = True) -> tuple[argparse.ArgumentParser, dict[str, Callable[..., int]]]:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    common.add_argument("-q", "--quiet", action="count", default=0, help="less log output")

    p = argparse.ArgumentParser(
        prog="librarian",
        description="See how a research group uses its Slurm allocation.",
    )
    p.add_argument("--version", action="version", version=f"librarian {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("collect", parents=[common],
                       help="query sacct and write per-QoS usage snapshots and plots",
                       description="Query sacct (or read a saved sacct -P file) and write "
                                   "data_<qos>.json and the PNG/PDF charts into site.data_dir.")
    c.add_argument("--config", metavar="F",
                   help="configuration file (default: $LIBRARIAN_CONFIG, else ./librarian.toml)")
    c.add_argument("--qos", nargs="+", metavar="NAME",
                   help="collect only these configured QoS (default: all)")
    c.add_argument("--sacct-file", metavar="F", type=Path,
                   help="read saved `sacct --parsable2` output instead of running sacct; "
                        "its times are in site.timezone")
    c.add_argument("--squeue-file", metavar="F", type=Path,
                   help="with --sacct-file: saved output of the squeue call Librarian makes "
                        "(see `collector/squeue.py`; times in UTC) for the queue table")
    c.add_argument("--now", metavar="TIME",
                   help="collection time, ISO 8601 or epoch seconds (default: the clock)")
    c.add_argument("--no-plots", action="store_true", help="skip the PNG/PDF charts")
    c.add_argument("--full", action="store_true",
                   help="re-query the whole window (in day-sized queries) instead of only "
                        "what changed since the last cycle")

    d = sub.add_parser("demo", parents=[common],
                       help="generate a synthetic month of sacct history and collect it",
                       description="Write a demo folder with the example configuration, a "
                                   "synthetic month of sacct history for its QoS groups, and "
                                   "the snapshots and charts collected from it.")
    d.add_argument("--dir", type=Path, default=Path("librarian-demo"),
                   help="folder for the demo (default: ./librarian-demo)")
    d.add_argument("--seed", type=int, default=7, help="random seed of the history")
    d.add_argument("--no-plots", action="store_true", help="skip the PNG/PDF charts")
    d.add_argument("--no-serve", action="store_true",
                   help="stop after collecting (default: serve the dashboard on the demo data)")
    d.add_argument("--port", type=int, default=8050, help="port of the demo dashboard (default 8050)")

    w = sub.add_parser("watchdog", parents=[common],
                       help="release or cancel the caller's stuck Librarian scrontab jobs",
                       description="Find the caller's own pending Librarian jobs (by job name) "
                                   "that are held or failed to launch; release them, and cancel "
                                   "those still stuck after a short wait so scrontab runs them anew.")
    w.add_argument("--config", metavar="F", help="configuration file")
    w.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")

    s = sub.add_parser("scrontab", parents=[common],
                       help="print the scrontab (and cron, systemd) lines that run Librarian",
                       description="Print the lines to paste into `scrontab -e`, with absolute "
                                   "paths to this install and configuration.")
    s.add_argument("--config", metavar="F", help="configuration file")

    handlers: dict[str, Callable[..., int]] = {"collect": _cmd_collect, "demo": _cmd_demo,
                                               "watchdog": _cmd_watchdog, "scrontab": _cmd_scrontab}
    # Subcommands from other packages (the app's serve, export, deploy, run,
    # doctor, passwd), found through their entry points, never imported here.
    for ep in entry_points(group=PLUGIN_GROUP) if plugins else ():
        handlers.update(ep.load()(sub, common))
    return p, handlers


def _cmd_collect(args: argparse.Namespace) -> int:
    from collector.collect import CollectError, collect
    from collector.lock import LockBusy

    config = load_config(find_config_path(args.config))
    try:
        now = parse_now(args.now, config.site.timezone) if args.now else time.time()
    except ValueError as err:
        log.error("--now: %s", err)
        return EXIT_USAGE
    if args.sacct_file is not None and not args.sacct_file.is_file():
        log.error("--sacct-file: no such file: %s", args.sacct_file)
        return EXIT_USAGE
    if args.squeue_file is not None and (args.sacct_file is None
                                         or not args.squeue_file.is_file()):
        log.error("--squeue-file: %s", "needs --sacct-file" if args.sacct_file is None
                  else f"no such file: {args.squeue_file}")
        return EXIT_USAGE
    try:
        report = collect(config, now, qos_names=args.qos, sacct_file=args.sacct_file,
                         plots=not args.no_plots, full=args.full,
                         squeue_file=args.squeue_file)
    except LockBusy as err:
        log.error("%s", err)
        return EXIT_LOCKED
    except CollectError as err:
        log.error("collection failed, previous snapshots kept: %s", err)
        return EXIT_FAILED
    except OSError as err:
        log.error("cannot write in %s: %s", config.site.data_dir, err)
        return EXIT_FAILED
    if report.sync is not None:
        s = report.sync
        mode = f"full backfill ({s.reason})" if s.full else "incremental"
        print(f"sacct: {mode}, {s.queries} quer{'y' if s.queries == 1 else 'ies'}, "
              f"{s.rows} rows in {s.sacct_seconds:.2f} s; job store: {s.records} records")
    for o in report.outcomes:
        print(f"{o.qos}: {o.users} users, {o.jobs_counted} jobs -> {o.snapshot}")
    return EXIT_OK


def _cmd_watchdog(args: argparse.Namespace) -> int:
    from collector.slurm import SlurmError
    from collector.watchdog import watchdog

    config = load_config(find_config_path(args.config))
    try:
        report = watchdog(config.site.slurm_bin, config.ops.job_names,
                          config.ops.watchdog_wait_seconds, dry_run=args.dry_run,
                          timeout=config.ops.command_timeout_seconds)
    except SlurmError as err:
        log.error("watchdog: %s", err)
        return EXIT_FAILED
    if report.released or report.cancelled:
        print(f"released {len(report.released)}, cancelled {len(report.cancelled)} stuck job(s)")
    return EXIT_FAILED if report.failed else EXIT_OK


def _cmd_scrontab(args: argparse.Namespace) -> int:
    from collector.schedule import Schedule, scrontab_text

    path = find_config_path(args.config).resolve()
    config = load_config(path)
    logs = config.site.data_dir.resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)  # Slurm does not create the --output folder
    exe = Path(sys.executable).with_name("librarian")
    if not exe.exists():
        exe = Path(sys.argv[0]).resolve()
    run_name, dog_name, digest_name = config.ops.job_names
    print(scrontab_text(Schedule(
        exe, path, logs, run_name, dog_name, digest_name,
        interval_minutes=config.app.collect_interval_minutes,
        digest_period=config.digest.period, digest_configured=config.notify.configured)), end="")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, serve: Callable[..., int] | None = None) -> int:
    from collector.demo import run_demo

    result = run_demo(args.dir, seed=args.seed, plots=not args.no_plots)
    print(f"Demo folder: {result.folder}")
    print(f"  configuration: {result.config_path}")
    print(f"  sacct history: {result.history_path} ({result.job_lines} job lines)")
    for o in result.report.outcomes:
        print(f"  {o.qos}: {o.users} users, {o.jobs_counted} jobs -> {o.snapshot}")
        for p in o.plots[:2]:
            print(f"    chart: {p}")
    if args.no_serve:
        return EXIT_OK
    if serve is None:
        log.warning("the dashboard is not installed (no `serve` command); stopping here")
        return EXIT_OK
    print(f"Dashboard of the demo data: http://127.0.0.1:{args.port}/", flush=True)
    return serve(argparse.Namespace(config=str(result.config_path), host="127.0.0.1",
                                    port=args.port))


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), "")
    parser, handlers = _parser(plugins=command not in SELF_CONTAINED)
    args = parser.parse_args(argv)
    _setup_logging(args.verbose - args.quiet)
    try:
        if args.command == "demo":
            return _cmd_demo(args, handlers.get("serve"))
        return handlers[args.command](args)
    except ConfigError as err:
        log.error("bad configuration: %s", err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
