"""`librarian serve`, `export` and `deploy`: the app's commands.

Registered as a `librarian.commands` entry point, so the collector's command
line finds them without importing the app.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from collector.config import find_config_path, load_config

log = logging.getLogger("librarian.app")
CONFIG_HELP = "configuration file (default: $LIBRARIAN_CONFIG, else ./librarian.toml)"


def serve(config_path: str | Path | None, host: str = "127.0.0.1", port: int = 8050) -> int:
    from app import create_app

    config = load_config(find_config_path(config_path))
    dash_app = create_app(config)
    print(f"Serving {config.site.name} on http://{host}:{port}{config.app.url_prefix}  "
          "(Ctrl-C to stop)", flush=True)
    # Flask's development server, without debug mode (no reloader, no debugger).
    dash_app.run(host=host, port=port, debug=False)
    return 0


def _serve(args: argparse.Namespace) -> int:
    return serve(args.config, args.host, args.port)


def _export(args: argparse.Namespace) -> int:
    import os

    from app.deploy import DeployError
    from app.export import Privacy, export_site

    config = load_config(find_config_path(args.config))
    key = None
    if args.anonymize:
        secret = os.environ.get("LIBRARIAN_ANON_SECRET", "")
        if len(secret) < 16:
            log.error("--anonymize needs $LIBRARIAN_ANON_SECRET (at least 16 characters)")
            return 2
        key = secret.encode()
    unknown = sorted(set(args.qos or ()) - {p.key for p in config.panels})
    if unknown:
        log.error("--qos: no such QoS in %s: %s", config.source, ", ".join(unknown))
        return 2
    try:
        report = export_site(config, Path(args.out), Privacy(key=key, top_users=args.top_users),
                             keys=args.qos or None)
    except (OSError, DeployError) as err:
        log.error("export failed: %s", err)
        return 1
    for qos, why in report.errors.items():
        log.warning("%s: no data exported: %s", qos, why)
    print(f"Exported to {report.out} ({len(report.written)} file(s) changed)")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from app.deploy import deploy

    config = load_config(find_config_path(args.config))
    if not config.deploy:
        log.error("%s has no [[deploy]] targets", config.source)
        return 2
    outcomes = deploy(config, args.target)
    for o in outcomes:
        print(f"{o.target}: {'ok' if o.ok else 'FAILED'}: {o.detail}")
    failed = [o.target for o in outcomes if not o.ok]
    if failed:
        log.error("deploy failed for: %s", ", ".join(failed))
        return 1
    return 0


def _run_cycle(args: argparse.Namespace) -> int:
    from app.operations import run_cycle
    from collector.lock import LockBusy

    config = load_config(find_config_path(args.config))
    try:
        results = run_cycle(config)
    except LockBusy as err:
        # The cycle before this one still runs (a slow sacct): this one skips,
        # quietly, so its scrontab job ends COMPLETED, not FAILED.
        log.warning("%s", err)
        return 0
    for r in results:
        print(f"{r.step}: {'ok' if r.ok else 'FAILED'} ({r.seconds:.1f} s): {r.detail}")
    return 0 if all(r.ok for r in results) else 1


def _doctor(args: argparse.Namespace) -> int:
    from app.operations import doctor

    config = load_config(find_config_path(args.config))
    checks = doctor(config)
    for c in checks:
        print(f"{'ok     ' if c.ok else 'PROBLEM'} {c.name}: {c.detail}")
        if c.fix:
            print(f"        fix: {c.fix}")
    return 0 if all(c.ok for c in checks) else 1


def _passwd(args: argparse.Namespace) -> int:
    import getpass
    import sys

    from app.security import PasswordFileError, set_password

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.user}: ")
        if getpass.getpass("Again: ") != password:
            log.error("the two passwords differ; nothing changed")
            return 2
    try:
        set_password(Path(args.file), args.user, password)
    except (PasswordFileError, OSError) as err:
        log.error("%s", err)
        return 2
    print(f"{args.file}: password set for {args.user}")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> dict[str, Any]:
    """Add the app's commands to `librarian`; return their handlers by name."""
    p = sub.add_parser("serve", parents=[common], help="serve the dashboard (development server)",
                       description="Serve the dashboard over the configured snapshots. "
                                   "In production run gunicorn (see the Procfile).")
    p.add_argument("--config", metavar="F", help=CONFIG_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")

    e = sub.add_parser("export", parents=[common], help="write the dashboard as a static site",
                       description="Write a self-contained static site (index.html, data, "
                                   "Plotly, Bootstrap) for GitHub Pages or any web server.")
    e.add_argument("--config", metavar="F", help=CONFIG_HELP)
    e.add_argument("--out", required=True, metavar="DIR", help="folder to write (created)")
    e.add_argument("--anonymize", action="store_true",
                   help="replace user names with pseudonyms keyed by $LIBRARIAN_ANON_SECRET")
    e.add_argument("--top-users", type=int, default=0, metavar="N",
                   help="keep the N busiest users, fold the rest into 'others'")
    e.add_argument("--qos", nargs="+", metavar="NAME",
                   help="a group's own site: these QoS alone (default: every QoS)")

    d = sub.add_parser("deploy", parents=[common], help="export and publish to the [[deploy]] targets",
                       description="Export and publish to each [[deploy]] target (pages: a git "
                                   "branch; copy: rsync/scp/local). Targets are independent; the "
                                   "exit status is 1 if any failed.")
    d.add_argument("--config", metavar="F", help=CONFIG_HELP)
    d.add_argument("--target", nargs="+", metavar="NAME", help="only these targets")
    r = sub.add_parser("run", parents=[common], help="the whole cycle: collect, export, deploy",
                       description="Collect every QoS (with plots), export the static site to "
                                   "ops.export_dir, deploy to the [[deploy]] targets; each step's "
                                   "outcome is recorded in data_dir/status.json.")
    r.add_argument("--config", metavar="F", help=CONFIG_HELP)
    doc = sub.add_parser("doctor", parents=[common], help="check that a cycle can work, with fixes",
                         description="Check the configuration, that sacct, sacctmgr and squeue "
                                     "answer, that the data folder is writable and that each "
                                     "deploy target is reachable; print a fix for each problem.")
    doc.add_argument("--config", metavar="F", help=CONFIG_HELP)
    pw = sub.add_parser("passwd", parents=[common],
                        help="add or change a user in the dashboard's password file",
                        description="Add or replace USER in FILE (salted scrypt hash, file "
                                    "mode 0600), for [app] auth = \"basic\".")
    pw.add_argument("file", metavar="FILE", help="the password file ([app] htpasswd_file)")
    pw.add_argument("user", metavar="USER")
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input")
    dg = sub.add_parser("digest", parents=[common],
                        help="the week's (or month's) digest: mail it, post it, or print it",
                        description="Per QoS: top users, hours at the limit, queued demand, "
                                    "efficiency flags, unused capacity, this period against the "
                                    "last, and the collector's health; sent by SMTP and/or the "
                                    "webhook of [notify] (what cannot be sent waits in the "
                                    "outbox for the next cycle).")
    dg.add_argument("--config", metavar="F", help=CONFIG_HELP)
    dg.add_argument("--period", choices=("week", "month"),
                    help="the seven days before today, or the last calendar month "
                         "(default: digest.period)")
    dg.add_argument("--dry-run", action="store_true", help="print it; send nothing")
    dg.add_argument("--html", metavar="F", help="with --dry-run: also write the HTML part to F")
    dg.add_argument("--now", metavar="TIME", help="as if it were this time (ISO 8601 or epoch)")
    return {"serve": _serve, "export": _export, "deploy": _deploy, "run": _run_cycle,
            "doctor": _doctor, "passwd": _passwd, "digest": _digest}


def _digest(args: argparse.Namespace) -> int:
    import time

    from app import digest
    from app.notify import Message, channels_of, deliver, enqueue
    from app.operations import read_snapshots
    from collector.cli import parse_now
    from collector.status import read_status, record_step, write_status

    config = load_config(find_config_path(args.config))
    try:
        now = parse_now(args.now, config.site.timezone) if args.now else time.time()
    except ValueError as err:
        log.error("--now: %s", err)
        return 2
    snaps, missing = read_snapshots(config)
    d = digest.build(config, snaps, read_status(config.site.data_dir), now,
                     args.period or config.digest.period, tuple(missing))
    charts = {q.qos: f"chart-{i}" for i, q in enumerate(d.qos) if q.daily}
    images = {cid: png for q in d.qos if (cid := charts.get(q.qos))
              and (png := digest.chart_png(q)) is not None}
    html = digest.html(d, {q: c for q, c in charts.items() if c in images})
    if args.dry_run:
        print(digest.text(d), end="")
        if args.html:
            Path(args.html).write_text(html)
        channels = channels_of(config)
        print(f"(dry run: nothing sent; it would go to {', '.join(channels)})" if channels
              else "(dry run: no [notify] channel is configured)")
        return 0
    channels = channels_of(config)
    if not channels:
        log.error("%s: no [notify.smtp] or [notify.webhook] to send the digest to "
                  "(use --dry-run to print it)", config.source)
        return 2
    queued = enqueue(config.site.data_dir, Message(
        digest.key_of(d), d.subject, digest.text(d), digest.markdown(d), html, images,
        created=now), channels)
    if not queued:
        print(f"{d.subject}: already sent or waiting in the outbox")
    started = time.time()
    report = deliver(config)
    data_dir = config.site.data_dir
    write_status(data_dir, record_step(read_status(data_dir), "notify", report.ok, started,
                                       time.time() - started, report.summary() if not report.ok
                                       else None, report.summary()))
    print(f"{d.subject}: {report.summary()}")
    return 0 if report.ok else 1
