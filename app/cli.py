"""`librarian serve`: the dashboard for development (production: gunicorn, see the Procfile).

Registered as a `librarian.commands` entry point, so the collector's command
line finds it without importing the app.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from collector.config import find_config_path, load_config

log = logging.getLogger("librarian.app")


def serve(config_path: str | Path | None, host: str = "127.0.0.1", port: int = 8050) -> int:
    from app import create_app

    config = load_config(find_config_path(config_path))
    dash_app = create_app(config)
    print(f"Serving {config.site.name} on http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    # Flask's development server, without debug mode (no reloader, no debugger).
    dash_app.run(host=host, port=port, debug=False)
    return 0


def _run(args: argparse.Namespace) -> int:
    return serve(args.config, args.host, args.port)


def register(sub: Any, common: argparse.ArgumentParser) -> dict[str, Any]:
    """Add `serve` to the `librarian` command; return its handler by name."""
    p = sub.add_parser("serve", parents=[common], help="serve the dashboard (development server)",
                       description="Serve the dashboard over the configured snapshots. "
                                   "In production run gunicorn (see the Procfile).")
    p.add_argument("--config", metavar="F",
                   help="configuration file (default: $LIBRARIAN_CONFIG, else ./librarian.toml)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    return {"serve": _run}
