"""The static export in real Chromium (python -m http.server), and deploys to real git and folders."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.export import Privacy, export_site
from collector.collect import collect
from collector.config import load_config
from collector.synth import SynthQos, synth_sacct
from tests.browser import chromium, free_port, until

NOW = int(time.time()) - 120
SECRET = "a-test-secret-of-enough-length"
CONFIG = """\
[site]
name = "Static Site"
timezone = "America/New_York"
data_dir = "data"

[collect]
bin_seconds = 3600
window_days = 30

[app]
refresh_seconds = 10

[[qos]]
name = "avery"
limits = { cpus = 430, gpus = 39, memory_gb = 3359 }

[[qos]]
name = "avery-b"
limits = { cpus = 16 }

[[qos]]
name = "missing"
"""


def history(site: Path, seed: int, users: int = 8) -> Path:
    """A synthetic month whose user names are distinctive ('zqsecret03'), so a
    byte search for them cannot match anything else."""
    text = synth_sacct(NOW, 30, 3000, n_users=users, tz="America/New_York", seed=seed,
                       qos=(SynthQos("avery", 0.7, 0.2), SynthQos("avery-b", 0.3, 0.0))).decode()
    lines = text.splitlines()
    names = sorted({ln.split("|")[2] for ln in lines[1:]} - {""})
    mapping = {n: f"zqsecret{i:02d}" for i, n in enumerate(names)}
    out = [lines[0]] + ["|".join([*c[:2], mapping.get(c[2], c[2]), *c[3:]])
                        for c in (ln.split("|") for ln in lines[1:])]
    path = site / f"history-{seed}.txt"
    path.write_text("\n".join(out) + "\n")
    return path


def real_names(site: Path) -> set[str]:
    names = set()
    for qos in ("avery", "avery-b"):
        names |= set(json.loads((site / "data" / f"data_{qos}.json").read_text())["users"])
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    (site / "librarian.toml").write_text(CONFIG)
    collect(load_config(site / "librarian.toml"), NOW, qos_names=["avery", "avery-b"],
            sacct_file=history(site, 1), plots=False)
    return site


@contextmanager
def http_server(folder: Path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def exported(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    export_site(load_config(site / "librarian.toml"), out)
    return out


@pytest.fixture
def page(tmp_path: Path, exported: Path):
    with http_server(exported) as url, chromium(tmp_path) as browser:
        page = browser.new_page()
        page.base_url = url  # type: ignore[attr-defined]
        elsewhere: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: r.url.startswith((url, "data:")) or elsewhere.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        assert elsewhere == [], f"the static page loaded from elsewhere: {elsewhere[:5]}"
        assert errors == [], f"JavaScript errors: {errors[:3]}"


def drawn(page, search: str | None = None) -> None:
    if search is not None:
        until(page, f"location.search === {search!r}")
    until(page, "['graph-ncpus','graph-ngpus','graph-memory','graph-njobs'].every("
                           "id => document.getElementById(id).data)")
    page.wait_for_timeout(200)


def gd(page, obs: str, expression: str):
    return page.evaluate(f"() => {{ const gd = document.getElementById('graph-{obs.lower()}'); return {expression}; }}")


def column(page, table: str, name: str) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tbody td[data-column='{name}']",
                                     "els => els.map(e => e.textContent)")


@pytest.mark.browser
class TestStaticPage:
    def test_tabs_presets_and_the_url(self, page) -> None:
        page.goto(page.base_url + "/")
        drawn(page)
        assert gd(page, "NCPUS", "gd.layout.annotations[0].text") == "QoS limit 430"
        page.click("#qos-tabs a[data-qos='avery-b']")
        drawn(page, "?qos=avery-b&range=7d")
        until(page, "document.getElementById('graph-ncpus').layout.annotations[0].text === 'QoS limit 16'")
        page.click("#range-preset button[data-range='24h']")
        drawn(page, "?qos=avery-b&range=24h")
        page.go_back()
        drawn(page, "?qos=avery-b&range=7d")
        assert page.get_attribute("#range-preset button[data-range='7d']", "class").count("active") == 1
        page.click("#qos-tabs a[data-qos='missing']")
        page.wait_for_selector("#qos-message:has-text('cannot be read')")

    def test_custom_range_totals_match_the_python_totals(self, page, site: Path) -> None:
        page.goto(page.base_url + "/?qos=avery&range=7d")
        drawn(page)
        python_totals = column(page, "total-table", "NCPUS")
        title = page.inner_text("#total-title")
        start, end = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d)", title)
        page.fill("#range-from", start.replace(" ", "T"))
        page.fill("#range-to", end.replace(" ", "T"))
        page.click("#range-apply")
        drawn(page)
        until(page, "location.search.includes('range=custom')")
        js_totals = column(page, "total-table", "NCPUS")
        # The custom span starts on the minute, the preset to the second: up to a
        # minute of usage apart, far below any real disagreement (units, overlap).
        assert [float(x.replace(",", "")) for x in js_totals] == pytest.approx(
            [float(x.replace(",", "")) for x in python_totals], rel=2e-3, abs=0.2)
        x_range = gd(page, "NCPUS", "gd.layout.xaxis.range")
        assert x_range[0].startswith(start)
        assert x_range[1].startswith(end)

    def test_legend_tables_and_dark_mode(self, page) -> None:
        page.goto(page.base_url + "/?qos=avery&range=30d")
        drawn(page)
        user = page.get_attribute("#legend .legend-item", "data-user")
        page.click(f"#legend .legend-item[data-user='{user}']")
        for obs in ("NCPUS", "NGPUS", "MEMORY", "NJOBS"):
            assert gd(page, obs, f"gd.data.filter(t => t.name === {user!r} && t.meta !== 'queued').every(t => t.visible === 'legendonly')")
        page.click("#total-table th[data-column='user']")
        users = column(page, "total-table", "user")
        assert users == sorted(users)
        assert page.inner_text("#total-table tfoot td[data-column='user']") == "Total"
        page.click("label[for='theme-switch']")
        until(page, "document.getElementById('graph-ncpus').layout.paper_bgcolor === '#212529'")
        page.reload(wait_until="domcontentloaded")
        assert page.get_attribute("html", "data-bs-theme") == "dark"  # before any script of ours ran
        drawn(page)
        assert gd(page, "NCPUS", "gd.layout.paper_bgcolor") == "#212529"

    def test_refresh_picks_up_new_data_files(self, page, site: Path, exported: Path) -> None:
        page.goto(page.base_url + "/?qos=avery&range=14d")
        drawn(page)
        before = page.eval_on_selector_all("#legend .legend-item", "e => e.length")
        config = load_config(site / "librarian.toml")
        collect(config, NOW + 60, qos_names=["avery", "avery-b"], sacct_file=history(site, 2, users=20),
                plots=False)
        export_site(config, exported)
        until(page, f"document.querySelectorAll('#legend .legend-item').length > {before}",
                               timeout=30000)
        assert page.evaluate("location.search") == "?qos=avery&range=14d"


class TestExportFiles:
    def test_reexport_without_new_data_changes_nothing(self, site: Path, tmp_path: Path) -> None:
        config = load_config(site / "librarian.toml")
        first = export_site(config, tmp_path)
        assert {p.name for p in first.written} >= {"index.html", "plotly.min.js", "avery.json"}
        assert export_site(config, tmp_path).written == []

    def test_new_data_changes_only_data_files(self, site: Path, tmp_path: Path) -> None:
        config = load_config(site / "librarian.toml")
        export_site(config, tmp_path)
        collect(config, NOW + 90, qos_names=["avery"], sacct_file=history(site, 3), plots=False)
        changed = export_site(config, tmp_path).written
        assert changed
        assert all(p.parent.name == "data" for p in changed)

    def test_anonymized_export_holds_no_real_name(self, site: Path, tmp_path: Path) -> None:
        export_site(load_config(site / "librarian.toml"), tmp_path,
                    Privacy(key=SECRET.encode(), top_users=5))
        names = real_names(site)
        assert len(names) > 5
        for path in tmp_path.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(n.encode() in data for n in names), f"a real user name is in {path}"
                assert not any(n in str(path) for n in names)
        avery = json.loads((tmp_path / "data" / "avery.json").read_text())
        assert "others" in avery["users"]
        assert len(avery["users"]) == 6
        assert all(u == "others" or re.fullmatch(r"user-[0-9a-f]{10}", u) for u in avery["users"])
        # The month by month tables name the same pseudonyms (folded users summed in 'others').
        month_users = [r["user"] for r in avery["user_months"]]
        assert month_users
        assert set(month_users) <= {*avery["users"], "Total"}
        assert len(month_users) == len(set(month_users))
        # Accounts may be personal: pseudonyms too; partitions stay.
        accounts = avery["groups"]["account"]["users"]
        assert len(accounts) == 2
        assert all(re.fullmatch(r"account-[0-9a-f]{10}", a) for a in accounts), accounts
        assert not any(b"avery-lab" in p.read_bytes() for p in tmp_path.rglob("*.json"))
        assert "gpu" in avery["groups"]["partition"]["users"]

    def test_a_damaged_snapshot_leaks_no_name_through_its_error(self, site: Path, tmp_path: Path) -> None:
        copy = tmp_path / "site"
        shutil.copytree(site / "data", copy / "data")
        (copy / "librarian.toml").write_text(CONFIG)
        doc = json.loads((copy / "data" / "data_avery-b.json").read_text())
        victim = doc["users"][0]
        del doc["observables"]["NCPUS"][victim]  # the reader's error names this user
        (copy / "data" / "data_avery-b.json").write_text(json.dumps(doc))
        report = export_site(load_config(copy / "librarian.toml"), tmp_path / "out",
                             Privacy(key=SECRET.encode()))
        assert victim in report.errors["avery-b"]  # the operator is told, locally
        for path in (tmp_path / "out").rglob("*.json"):
            assert victim.encode() not in path.read_bytes(), path

    def test_pseudonyms_are_stable_across_runs(self, site: Path, tmp_path: Path) -> None:
        config = load_config(site / "librarian.toml")
        export_site(config, tmp_path / "a", Privacy(key=SECRET.encode()))
        export_site(config, tmp_path / "b", Privacy(key=SECRET.encode()))
        a = json.loads((tmp_path / "a" / "data" / "avery.json").read_text())["users"]
        b = json.loads((tmp_path / "b" / "data" / "avery.json").read_text())["users"]
        assert a == b

    def test_the_first_look_at_each_qos_finds_the_users_the_export_shows(self, site: Path) -> None:
        """The colours are chosen from each QoS's users read without its
        series (snapshot_users): the same names, pseudonymised alike, as the
        whole snapshot read for its file."""
        from app.export import _snapshot, _users

        config = load_config(site / "librarian.toml")
        for privacy in (Privacy(), Privacy(key=SECRET.encode())):
            for panel in config.panels[:2]:
                snap = _snapshot(config, panel, privacy)
                assert not isinstance(snap, str)
                assert snap.users
                assert _users((config, panel, privacy)) == snap.users
        missing = _users((config, config.panels[2], Privacy()))
        assert isinstance(missing, str)
        assert "data_missing.json" in missing


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@contextmanager
def sshd(tmp: Path):
    """A real sshd on loopback for this test only: its own host key, config and
    authorized key; yields the environment that makes rsync use it."""
    exe = Path("/usr/sbin/sshd")
    if not exe.exists() or os.geteuid() != 0:
        from tests.browser import need
        need("openssh-server (and root to run sshd)", False)
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    port = free_port()
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\nPidFile {tmp / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nStrictModes no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation folder
    proc = subprocess.Popen([str(exe), "-D", "-f", str(tmp / "sshd_config"), "-E", str(tmp / "sshd.log")])
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["ssh-keyscan", "-p", str(port), "127.0.0.1"], capture_output=True,
                             check=False).returncode != 0:
            assert time.monotonic() < deadline, (tmp / "sshd.log").read_text()
            time.sleep(0.2)
        ssh = (f"ssh -p {port} -i {tmp / 'client_key'} -o StrictHostKeyChecking=no "
               f"-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR")
        yield {"RSYNC_RSH": ssh}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class TestDeploy:
    def deploy(self, site: Path, bare: Path, copy_dest: Path, extra: str = "", *args: str):
        (site / "deploy.toml").write_text(CONFIG + f"""
[[deploy]]
name = "public"
kind = "pages"
remote = "{bare}"
anonymize = true
{extra}
[[deploy]]
name = "local"
kind = "copy"
dest = "{copy_dest}"
""")
        exe = Path(sys.executable).with_name("librarian")
        return subprocess.run([str(exe), "deploy", "--config", str(site / "deploy.toml"), *args],
                              capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "LIBRARIAN_ANON_SECRET": SECRET})

    def test_pages_branch_created_then_unchanged_then_one_small_commit(self, site: Path,
                                                                       tmp_path: Path) -> None:
        bare = tmp_path / "remote.git"
        git("init", "--quiet", "--bare", str(bare))
        first = self.deploy(site, bare, tmp_path / "copy")
        assert first.returncode == 0, first.stderr
        assert "public: ok: pushed" in first.stdout
        assert "gh-pages" in git("ls-remote", "--heads", str(bare))
        files = git("ls-tree", "-r", "--name-only", "gh-pages", cwd=bare).split()
        assert {".nojekyll", "index.html", "data/avery.json", "static/plotly.min.js"} <= set(files)
        assert (tmp_path / "copy" / "index.html").exists()

        second = self.deploy(site, bare, tmp_path / "copy")
        assert "public: ok: no change" in second.stdout
        assert git("rev-list", "--count", "gh-pages", cwd=bare).strip() == "1"

        collect(load_config(site / "librarian.toml"), NOW + 100, qos_names=["avery"],
                sacct_file=history(site, 4), plots=False)
        third = self.deploy(site, bare, tmp_path / "copy")
        assert "public: ok: pushed" in third.stdout
        assert git("rev-list", "--count", "gh-pages", cwd=bare).strip() == "2"
        changed = git("diff", "--name-only", "gh-pages~1", "gh-pages", cwd=bare).split()
        assert changed
        assert all(c.startswith("data/") for c in changed)
        log = git("log", "--format=%B", "gh-pages", cwd=bare)
        for name in real_names(site):
            assert name not in log
        for f in git("ls-tree", "-r", "--name-only", "gh-pages", cwd=bare).split():
            blob = subprocess.run(["git", "show", f"gh-pages:{f}"], cwd=bare, capture_output=True,
                                  check=True).stdout
            assert not any(n.encode() in blob for n in real_names(site)), f"{f} names a user"

    def test_a_bad_remote_fails_clearly_and_the_other_target_still_runs(self, site: Path,
                                                                         tmp_path: Path) -> None:
        result = self.deploy(site, tmp_path / "no-such-remote.git", tmp_path / "copy")
        assert result.returncode == 1
        assert "public: FAILED:" in result.stdout
        assert "no-such-remote.git" in result.stdout
        assert "local: ok: copied" in result.stdout
        assert (tmp_path / "copy" / "data" / "avery.json").exists()

    def test_copy_over_ssh_to_an_sshd_on_loopback(self, site: Path, tmp_path: Path) -> None:
        dest = tmp_path / "remote-www"
        (site / "ssh.toml").write_text(CONFIG + f'[[deploy]]\nname = "www"\nkind = "copy"\n'
                                       f'dest = "root@127.0.0.1:{dest}"\n')
        exe = Path(sys.executable).with_name("librarian")
        with sshd(tmp_path / "ssh") as env:
            out = subprocess.run([str(exe), "deploy", "--config", str(site / "ssh.toml")],
                                 capture_output=True, text=True, timeout=120, check=False,
                                 env={**os.environ, **env})
        assert out.returncode == 0, out.stdout + out.stderr
        assert "www: ok: copied to root@127.0.0.1:" in out.stdout
        assert (dest / "index.html").exists()
        assert (dest / "data" / "avery.json").exists()

    def test_anonymizing_without_a_secret_is_refused(self, site: Path, tmp_path: Path) -> None:
        (site / "nosecret.toml").write_text(CONFIG + f'[[deploy]]\nkind = "copy"\ndest = "{tmp_path / "c"}"\n'
                                            'anonymize = true\nsecret_env = "NO_SUCH_VAR_X"\n')
        exe = Path(sys.executable).with_name("librarian")
        out = subprocess.run([str(exe), "deploy", "--config", str(site / "nosecret.toml")],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 1
        assert "set $NO_SUCH_VAR_X" in out.stdout
        assert not (tmp_path / "c").exists()


def test_export_with_several_clusters_names_each_tab(tmp_path: Path, samples: Path) -> None:
    from tests.conftest import config_text

    text = config_text().replace('data_dir = "data"', 'data_dir = "data"\nclusters = ["hpg", "ai"]')
    (tmp_path / "librarian.toml").write_text(text)
    config = load_config(tmp_path / "librarian.toml")
    collect(config, 1795640400, sacct_file=samples / "sacct_avery.txt", plots=False)
    report = export_site(config, tmp_path / "site")
    assert not report.errors
    manifest = json.loads((tmp_path / "site" / "data" / "manifest.json").read_text())
    assert manifest["qos"] == ["avery@hpg", "avery-b@hpg", "avery@ai", "avery-b@ai"]
    assert manifest["labels"]["avery@ai"] == "avery (ai)"
    data = json.loads((tmp_path / "site" / "data" / "avery@ai.json").read_text())
    assert data["cluster"] == "ai"


def test_a_groups_own_site_holds_nothing_of_the_other_groups(tmp_path: Path) -> None:
    """`export --qos` and a [[deploy]] target's `qos`: one site per group from
    one run, its QoS alone (not a name, a number or a file of the others)."""
    from tests.test_groups_browser import make_site

    cfg = make_site(tmp_path / "site", 3)
    config = load_config(cfg)
    out = tmp_path / "grp01-site"
    export_site(config, out, keys=["grp01"])
    data = sorted(p.name for p in (out / "data").iterdir())
    assert data == ["grp01.json", "manifest.json"]
    assert json.loads((out / "data" / "manifest.json").read_text())["qos"] == ["grp01"]
    for path in out.rglob("*"):
        if path.is_file():
            body = path.read_bytes()
            assert b"grp00" not in body, path
            assert b"grp02" not in body, path
    assert b"grp01-" in (out / "data" / "grp01.json").read_bytes()     # its own users are there

    # From the command line; an unknown QoS is refused, naming it.
    exe = Path(sys.executable).with_name("librarian")
    ok = subprocess.run([str(exe), "export", "--config", str(cfg), "--out", str(tmp_path / "cli"),
                         "--qos", "grp02"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert sorted(p.name for p in (tmp_path / "cli" / "data").iterdir()) == \
        ["grp02.json", "manifest.json"]
    bad = subprocess.run([str(exe), "export", "--config", str(cfg), "--out", str(tmp_path / "x"),
                          "--qos", "grp09"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "grp09" in bad.stderr

    # A deploy target per group, anonymised or not, in one `librarian deploy`.
    cfg.write_text(cfg.read_text() + f"""
[[deploy]]
name = "grp00-pages"
kind = "copy"
dest = "{tmp_path / 'pub-grp00'}"
qos = ["grp00"]
anonymize = true

[[deploy]]
name = "grp02-web"
kind = "copy"
dest = "{tmp_path / 'pub-grp02'}"
qos = ["grp02"]
""")
    run = subprocess.run([str(exe), "deploy", "--config", str(cfg)], capture_output=True,
                         text=True, check=False, env={**os.environ, "LIBRARIAN_ANON_SECRET": SECRET})
    assert run.returncode == 0, run.stderr
    for name, other, real in (("grp00", b"grp02", False), ("grp02", b"grp00", True)):
        site = tmp_path / f"pub-{name}"
        assert sorted(p.name for p in (site / "data").iterdir()) == [f"{name}.json",
                                                                     "manifest.json"]
        bodies = b"".join(p.read_bytes() for p in site.rglob("*") if p.is_file())
        assert other not in bodies
        assert (f"{name}-".encode() in bodies) is real       # pseudonyms in the anonymised one
