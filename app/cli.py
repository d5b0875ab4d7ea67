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
    print(f"Serving {config.site.name} on http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
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
    try:
        report = export_site(config, Path(args.out), Privacy(key=key, top_users=args.top_users))
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

    d = sub.add_parser("deploy", parents=[common], help="export and publish to the [[deploy]] targets",
                       description="Export and publish to each [[deploy]] target (pages: a git "
                                   "branch; copy: rsync/scp/local). Targets are independent; the "
                                   "exit status is 1 if any failed.")
    d.add_argument("--config", metavar="F", help=CONFIG_HELP)
    d.add_argument("--target", nargs="+", metavar="NAME", help="only these targets")
    return {"serve": _serve, "export": _export, "deploy": _deploy}
