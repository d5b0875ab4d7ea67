"""Librarian's dashboard: a Dash app over the collector's snapshots."""

from __future__ import annotations

import logging
from pathlib import Path


def _assets_folder() -> Path:
    """app/assets in an installed wheel (pyproject maps the top-level assets/
    there); the checkout's assets/ when running from the source tree."""
    here = Path(__file__).resolve().parent
    packaged = here / "assets"
    return packaged if packaged.is_dir() else here.parent / "assets"


ASSETS = _assets_folder()


def create_app(config):
    """The Dash app for a configuration (its Flask server is `.server`)."""
    from dash import Dash
    from flask_caching import Cache

    from app.callbacks import register_callbacks
    from app.data import SnapshotStore, cache_config
    from app.layout import INDEX, THEME_BOOT_JS, build_layout
    from app.security import Access, script_hash, secure

    dash_app = Dash(
        __name__, assets_folder=str(ASSETS), title=f"{config.site.name} · QoS usage",
        update_title=None, serve_locally=True,
        # Every route, asset and callback under the prefix the web server passes on.
        url_base_pathname=config.app.url_prefix,
    )
    dash_app.index_string = INDEX
    cache = Cache(dash_app.server, config=cache_config(config))
    store = SnapshotStore(config, cache)
    access = Access(config.app, config.site.name)
    access.keys = tuple(p.key for p in config.panels)

    def visible() -> tuple[str, ...]:
        """The QoS of this request's visitor (all without an access map, and
        outside a request: Dash's own check of the layout at start-up)."""
        from flask import has_request_context

        if not has_request_context():
            return access.keys
        return access.visible(access.visitor(), access.keys)

    # Made per visit: with an access map each visitor's tabs, picker and
    # overview hold their own QoS alone. (A layout function would otherwise
    # have Dash embed its start-up call, every QoS, in each page as the
    # `validation_layout`: every visitor's layout has the same components.)
    if config.app.access:
        dash_app.config.suppress_callback_exceptions = True
        dash_app.layout = lambda: build_layout(config, visible())
    else:
        dash_app.layout = build_layout(config)
    register_callbacks(dash_app, config, store, visible)
    _health_route(dash_app.server, config, store, visible)
    # Never debug here: no debugger, no dev tools, no hot reload, whatever the
    # environment says (DASH_DEBUG, DASH_HOT_RELOAD, FLASK_DEBUG).
    dash_app.enable_dev_tools(
        debug=False, dev_tools_ui=False, dev_tools_props_check=False,
        dev_tools_serve_dev_bundles=False, dev_tools_hot_reload=False,
        dev_tools_prune_errors=True, dev_tools_disable_version_check=True)
    dash_app.server.debug = False
    _not_found_for_unknown_files(dash_app.server)
    secure(dash_app.server, config.app, config.site.name,
           [*dash_app.csp_hashes(), script_hash(THEME_BOOT_JS)], access)
    logging.getLogger("librarian.app").setLevel(logging.INFO)
    return dash_app


def _not_found_for_unknown_files(server) -> None:
    """An unknown component-suite file (a probe, a path with ..) is a 404, not a 500."""
    from dash.exceptions import DependencyException
    from flask import Response

    server.register_error_handler(
        DependencyException, lambda _err: Response("Not found.\n", 404, mimetype="text/plain"))


def _health_route(server, config, store, visible) -> None:
    """GET <prefix>healthz: each tab's snapshot version and time, read through
    the cache (for monitoring, and to see that every worker serves the same data)."""
    import os

    from flask import jsonify

    def healthz():
        panels = {}
        for key in visible():
            loaded = store.load(key)
            snap = loaded.snapshot
            panels[key] = {"ok": snap is not None, "version": loaded.version,
                           "now": snap.now if snap is not None else None}
        return jsonify({"ok": all(p["ok"] for p in panels.values()), "worker": os.getpid(),
                        "panels": panels})

    server.add_url_rule(f"{config.app.url_prefix}healthz", "librarian_healthz", healthz)
