"""Installed the usual way: a wheel built from the checkout, in a fresh venv far from it.

The commands run in a folder outside the checkout, with the venv's own
`librarian` and `gunicorn`, so nothing can come from the source tree: the
CSS, JS and HTML the dashboard and the export need must be in the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collector import __version__
from tests.browser import REPO, chromium, gunicorn, until
from tests.test_export import http_server

pytestmark = pytest.mark.browser


def _run(args: list[str | Path], cwd: Path, timeout: float = 600, **env: str
         ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, **env})
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """A wheel of the checkout installed into a new venv (Debian's Python, as
    scripts/install.sh uses), and a working folder that is not the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Built from a copy of the files git knows (an admin's clean clone): an
    # in-tree build would leave build/ behind, whose stale copies of removed
    # modules a later wheel would pick up.
    src = tmp / "src"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    wheels = tmp / "wheels"
    # At pip's usual verbosity: the build backend's warnings are shown.
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, src], cwd=tmp)
    (wheel,) = wheels.glob("librarian-*.whl")
    venv = tmp / "venv"
    _run(["/usr/bin/python3", "-m", "venv", venv], cwd=tmp)
    _run([venv / "bin" / "python", "-m", "pip", "install", "-qq", wheel], cwd=tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    return {"venv": venv, "work": work, "wheel": wheel, "build_output": build.stdout + build.stderr}


def test_the_wheel_holds_the_assets_and_the_static_page(installed: dict) -> None:
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for needed in ("app/assets/0-bootstrap.min.css", "app/assets/librarian.css",
                   "app/assets/librarian.js", "app/static_site/index.html",
                   "app/static_site/site.js", "collector/librarian.example.toml",
                   "collector/snapshot.schema.json"):
        assert needed in names, f"the wheel lacks {needed}"
    # Every module of the checkout (a new subpackage must be listed in pyproject).
    modules = {str(p.relative_to(REPO)) for top in ("collector", "app")
               for p in (REPO / top).rglob("*.py")}
    assert modules <= names, f"the wheel lacks {sorted(modules - names)}"


def test_version_and_a_quiet_build(installed: dict) -> None:
    venv, work = installed["venv"], installed["work"]
    out = _run([venv / "bin" / "librarian", "--version"], cwd=work)
    assert out.stdout.strip() == f"librarian {__version__}"
    where = _run([venv / "bin" / "python", "-c", "import app, collector; "
                  "print(app.__file__); print(collector.__file__)"], cwd=work).stdout.split()
    assert all(str(venv) in w for w in where), f"imported from outside the venv: {where}"
    # No screens of deprecation warnings from the build (SPDX license, current metadata).
    said = str(installed["build_output"]).lower()
    assert "deprecat" not in said, said[:3000]
    assert "warning: " not in said.replace("warning: location", ""), said[:3000]


def test_demo_export_deploy_and_the_styled_dashboard(installed: dict,
                                                     tmp_path: Path) -> None:
    venv, work = installed["venv"], installed["work"]
    librarian = venv / "bin" / "librarian"
    demo = _run([librarian, "demo", "--no-serve", "--dir", work / "demo"], cwd=work)
    assert "avery:" in demo.stdout, demo.stdout
    assert "chart:" in demo.stdout, demo.stdout
    assert "Warning" not in demo.stderr, demo.stderr[:2000]
    config = work / "demo" / "librarian.toml"
    _run([librarian, "export", "--config", config, "--out", work / "site"], cwd=work)
    for f in ("index.html", "static/site.js", "static/bootstrap.min.css",
              "static/librarian.css", "static/plotly.min.js", "data/manifest.json",
              "data/avery.json"):
        assert (work / "site" / f).is_file(), f"the export lacks {f}"

    bare = tmp_path / "pages.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    deploy_config = work / "demo" / "deploy.toml"
    deploy_config.write_text(config.read_text() + f"""
[[deploy]]
name = "pages"
kind = "pages"
remote = "{bare}"

[[deploy]]
name = "www"
kind = "copy"
dest = "{tmp_path / 'www'}"
""")
    _run([librarian, "deploy", "--config", deploy_config], cwd=work)
    pushed = subprocess.run(["git", "ls-tree", "-r", "--name-only", "gh-pages"], cwd=bare,
                            capture_output=True, text=True, check=True).stdout.split()
    assert {"index.html", "static/bootstrap.min.css", "data/avery.json"} <= set(pushed), pushed
    assert (tmp_path / "www" / "static" / "librarian.css").is_file()

    with chromium(tmp_path) as browser:
        with gunicorn(config, exe=venv / "bin" / "gunicorn", cwd=work,
                      log=tmp_path / "gunicorn.log") as url:
            _check_page(browser, url + "/", ["graph-ncpus", "graph-ngpus", "graph-memory",
                                             "graph-njobs"])
        with http_server(work / "site") as url:
            _check_page(browser, url + "/", ["graph-ncpus", "graph-ngpus", "graph-memory",
                                             "graph-njobs"])


def _check_page(browser, url: str, graphs: list[str]) -> None:
    page = browser.new_page()
    bad: list[str] = []
    page.on("response", lambda r: r.status >= 400 and bad.append(f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: bad.append(f"failed {r.url}"))
    page.goto(url)
    until(page, "() => " + " && ".join(
        f"document.querySelector('#{g} .main-svg') !== null" for g in graphs), timeout=30000)
    # Bootstrap applied: its navbar is a flex box and its .btn has a border radius.
    styled = page.evaluate("() => [getComputedStyle(document.querySelector('.navbar')).display,"
                           " getComputedStyle(document.querySelector('.btn')).borderTopLeftRadius]")
    assert styled[0] == "flex", f"{url}: not styled: {styled}"
    assert styled[1] not in ("0px", ""), f"{url}: not styled: {styled}"
    charts = page.evaluate("() => document.querySelectorAll('[id^=\"graph-\"] .js-plotly-plot, "
                           "div.js-plotly-plot[id^=\"graph-\"]').length")
    assert charts == 4, f"{url}: {charts} usage charts"
    small = page.evaluate("() => ['pressure-graph', 'wait-graph'].filter(id => "
                          "document.getElementById(id).querySelector('.main-svg')).length")
    assert small == 2, f"{url}: the pressure and wait charts are not drawn"
    assert bad == [], f"{url}: requests that failed: {bad}"
    page.close()
