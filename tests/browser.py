"""Real parts for the page tests: gunicorn serving the app, Debian's Chromium via Playwright.

Under CI (CI=true) a missing browser fails the tests that need it; elsewhere
they skip and say what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]


def need(what: str, ok: bool) -> None:
    if ok:
        return
    message = f"{what} is missing (scripts/install.sh test installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs it: {message}")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(config: Path, workers: int = 2, log: Path | None = None, prefix: str = "/",
             env: dict[str, str] | None = None, ready_headers: dict[str, str] | None = None,
             exe: Path | None = None, cwd: Path = REPO) -> Iterator[str]:
    """`gunicorn app.wsgi:server` as in production (this venv's, or `exe` from
    another install, run in `cwd`); yields the base URL (no prefix)."""
    exe = exe or Path(sys.executable).with_name("gunicorn")
    need("gunicorn", exe.exists())
    port = free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(exe), "app.wsgi:server", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--timeout", "60", "--graceful-timeout", "2"],
        cwd=cwd, env={**os.environ, "LIBRARIAN_CONFIG": str(config), **(env or {})},
        stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = urllib.request.Request(url + prefix, headers=ready_headers or {})
                with urllib.request.urlopen(ready, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                detail = log.read_text() if log and log.exists() else ""
                raise RuntimeError(f"gunicorn did not start (exit {proc.poll()}): {detail[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()  # type: ignore[union-attr]


@contextmanager
def chromium(tmp: Path) -> Iterator[object]:
    need("Debian's chromium (/usr/bin/chromium)", Path(CHROMIUM).exists())
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("playwright (Python)", False)
    with sync_playwright() as p:
        profile = tmp / "chromium-profile"
        profile.mkdir(exist_ok=True)
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1400, "height": 1300})
        try:
            yield context
        finally:
            context.close()


def new_page(browser, errors: list[str]) -> object:
    """A page of `browser` whose console errors are appended to `errors`."""
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page


def have_chromium() -> bool:
    return Path(CHROMIUM).exists() and shutil.which("chromium") is not None


def until(page, expression: str, **kwargs: object) -> object:
    """page.wait_for_function for an expression, sent as a function: the pages
    have a Content-Security-Policy without 'unsafe-eval', and Playwright
    evaluates a bare expression string with eval inside the page."""
    if not re.match(r"\s*\(\w*\)\s*=>", expression):   # a function already: "(arg) => ..."
        expression = f"() => ({expression})"
    return page.wait_for_function(expression, **kwargs)
