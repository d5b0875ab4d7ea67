"""The boundary between collector and app, checked on what a process really loads.

The linter bans the imports (pyproject.toml, TID251/TID253); these tests run
the collector's commands in a fresh interpreter and look at sys.modules, so
an import through a third module is caught as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fake_sacct
from tests.conftest import config_text

NOW = "2026-11-25T21:00:00"
# Never on the collector's path: the app and its web stack, and (without plots)
# the two slow imports.
BANNED = ("app", "dash", "flask", "flask_caching", "plotly", "pandas", "matplotlib")


def _loaded(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps({{m: m in sys.modules for m in {BANNED!r}}}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "librarian.toml").write_text(config_text())
    return tmp_path


def test_every_collector_module_imports_none_of_them() -> None:
    import collector

    names = sorted(p.stem for p in Path(collector.__file__).parent.glob("*.py")
                   if p.stem not in ("__main__", "plots"))
    code = "\n".join(f"import collector.{n}" for n in names) + "\nimport collector.store"
    loaded = _loaded(code)
    assert not any(loaded.values()), f"collector modules load {[m for m, v in loaded.items() if v]}"
    # plots.py is the one place matplotlib comes in (imported only to draw).
    assert _loaded("import collector.plots")["matplotlib"] is True


def test_a_live_collect_without_plots_loads_none_of_them(site: Path, samples: Path) -> None:
    bin_dir = site / "bin"
    fake_sacct.install(bin_dir, prints=samples / "sacct_avery.txt")
    args = ["collect", "--config", str(site / "librarian.toml"), "--now", NOW, "--no-plots", "-q"]
    env = {**os.environ, "PATH": fake_sacct.path_with(bin_dir)}
    loaded = _loaded(f"from collector.cli import main\nassert main({args!r}) == 0\n"
                     f"assert main({args!r}) == 0", env)
    assert (site / "data" / "store" / "hot.arrow").exists()
    assert not any(loaded.values()), f"collect loaded {[m for m, v in loaded.items() if v]}"


def test_a_file_collect_with_step_usage_loads_none_of_them(site: Path) -> None:
    """A saved history with step lines and their usage fields (the efficiency
    path: regexes, folding steps) stays off pandas too."""
    from collector.synth import synth_sacct

    history = site / "history.txt"
    history.write_bytes(synth_sacct(1_764_100_000, 2, 400, seed=3, steps=0.8, usage=True))
    args = ["collect", "--config", str(site / "librarian.toml"), "--sacct-file", str(history),
            "--now", NOW, "--no-plots", "-q"]
    loaded = _loaded(f"from collector.cli import main\nassert main({args!r}) == 0\n")
    assert not any(loaded.values()), f"collect loaded {[m for m, v in loaded.items() if v]}"


def _main(args: list[str]) -> str:
    return (f"from collector.cli import main\ntry:\n    main({args!r})\n"
            "except SystemExit:\n    pass")


def test_scrontab_loads_none_of_the_app(site: Path) -> None:
    loaded = _loaded(_main(["scrontab", "--config", str(site / "librarian.toml")]))
    assert not any(loaded[m] for m in ("app", "dash", "flask", "plotly")), loaded


def test_registering_the_app_commands_loads_no_web_stack() -> None:
    """`librarian --help` lists the app's commands (entry points): only app.cli
    is imported for that, never Dash, Flask or Plotly."""
    loaded = _loaded(_main(["--version"]))
    assert loaded["app"] is True
    assert not any(loaded[m] for m in ("dash", "flask", "plotly")), loaded
