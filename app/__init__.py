"""Librarian's dashboard: a Dash app over the collector's snapshots."""

from __future__ import annotations

import logging
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def create_app(config):
    """The Dash app for a configuration (its Flask server is `.server`)."""
    from dash import Dash
    from flask_caching import Cache

    from app.callbacks import register_callbacks
    from app.data import SnapshotStore, cache_config
    from app.layout import INDEX, build_layout

    dash_app = Dash(
        __name__, assets_folder=str(ASSETS), title=f"{config.site.name} · QoS usage",
        update_title=None, serve_locally=True,
    )
    dash_app.index_string = INDEX
    cache = Cache(dash_app.server, config=cache_config(config))
    store = SnapshotStore(config, cache)
    dash_app.layout = build_layout(config)
    register_callbacks(dash_app, config, store)
    logging.getLogger("librarian.app").setLevel(logging.INFO)
    return dash_app
