"""Configuration: defaults, the example file, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import (
    EXAMPLE_PATH,
    ConfigError,
    Limits,
    find_config_path,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "librarian.toml"
    p.write_text(text)
    return p


MINIMAL = '[[qos]]\nname = "avery"\n'


class TestExample:
    def test_example_reproduces_the_seed_setup(self) -> None:
        cfg = load_config(EXAMPLE_PATH)
        assert cfg.site.name == "HiPerGator"
        assert cfg.site.timezone == "America/New_York"
        assert [q.name for q in cfg.qos] == ["avery", "avery-b"]
        assert cfg.qos[0].limits == Limits(cpus=430, gpus=39, memory_gb=3359)
        assert cfg.qos[1].limits == Limits(cpus=3870, gpus=0, memory_gb=30234)
        assert (cfg.collect.bin_seconds, cfg.collect.window_days) == (3600, 30)
        assert cfg.collect.n_bins == 720
        assert cfg.app.refresh_seconds == 300
        assert cfg.app.cache == "simple"
        assert cfg.app.chart_top == 20

    def test_repo_root_example_is_the_packaged_one(self) -> None:
        assert (REPO / "librarian.example.toml").read_text() == EXAMPLE_PATH.read_text()


class TestDefaults:
    def test_minimal_file_gets_defaults(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, MINIMAL))
        assert cfg.site.timezone == "UTC"
        assert cfg.collect.sacct_timeout_seconds == 300
        assert cfg.qos[0].limits == Limits()
        assert cfg.site.slurm_bin is None
        # A year of daily history, read in 30 older days per cycle after the window.
        assert (cfg.collect.history_days, cfg.collect.history_days_per_cycle) == (365, 30)
        wide = load_config(write(tmp_path, "[collect]\nwindow_days = 400\n" + MINIMAL))
        assert wide.collect.history_days == 400        # never shorter than the window

    def test_relative_data_dir_is_relative_to_the_config_file(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, '[site]\ndata_dir = "out/d"\n' + MINIMAL))
        assert cfg.site.data_dir == tmp_path.resolve() / "out" / "d"

    def test_absolute_data_dir_is_kept(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, f'[site]\ndata_dir = "{tmp_path}/abs"\n' + MINIMAL))
        assert cfg.site.data_dir == tmp_path / "abs"

    def test_deploy_targets(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, MINIMAL + "[[deploy]]\nkind = 'pages'\nremote = '/r.git'\n"
                                "anonymize = true\ntop_users = 5\n"))
        (t,) = cfg.deploy
        assert (t.name, t.kind, t.branch, t.anonymize, t.top_users) == ("pages", "pages", "gh-pages", True, 5)

    def test_limits_auto_by_default_none_or_numbers_that_override(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, "[[qos]]\nname = 'a'\n[[qos]]\nname = 'b'\n"
                                "limits = 'none'\n[[qos]]\nname = 'c'\nlimits = {cpus = 8}\n"))
        a, b, c = cfg.qos
        assert (a.auto_limits, a.limits.get("cpus")) == (True, None)
        assert (b.auto_limits, b.limits.get("cpus")) == (False, None)
        assert (c.auto_limits, c.limits.get("cpus")) == (True, 8)

    def test_clusters_make_one_panel_per_cluster_and_qos(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, "[site]\nclusters = ['hpg', 'ai']\n" + MINIMAL))
        assert cfg.clusters == ("hpg", "ai")
        assert [(p.key, p.label, p.file_cluster) for p in cfg.panels][:1] == [
            ("avery@hpg", "avery (hpg)", "hpg")]
        one = load_config(write(tmp_path, "[site]\nclusters = ['hpg']\n" + MINIMAL))
        assert [(p.key, p.label, p.file_cluster) for p in one.panels][:1] == [
            ("avery", "avery", "")]

    def test_slurm_bin_is_a_path(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, '[site]\nslurm_bin = "/opt/slurm/bin"\n' + MINIMAL))
        assert cfg.site.slurm_bin == Path("/opt/slurm/bin")


class TestFinding:
    def test_explicit_beats_environment(self) -> None:
        assert find_config_path("a.toml", {"LIBRARIAN_CONFIG": "b.toml"}) == Path("a.toml")

    def test_environment_beats_default(self) -> None:
        assert find_config_path(None, {"LIBRARIAN_CONFIG": "b.toml"}) == Path("b.toml")

    def test_default_is_librarian_toml_here(self) -> None:
        assert find_config_path(None, {}) == Path("librarian.toml")


BAD = [
    ("[site]\ncolour = 1\n" + MINIMAL, "site.colour", "unknown key"),
    ("[sight]\n" + MINIMAL, "sight", "unknown key"),
    ("[collect]\nbin_seconds = '3600'\n" + MINIMAL, "collect.bin_seconds", "must be an integer"),
    ("[collect]\nbin_seconds = 7\n" + MINIMAL, "collect.bin_seconds", "must divide a day"),
    ("[collect]\nwindow_days = 0\n" + MINIMAL, "collect.window_days", "greater than 0"),
    ("[collect]\nwindow_days = true\n" + MINIMAL, "collect.window_days", "must be an integer"),
    ("[collect]\nsacct_timeout_seconds = -1\n" + MINIMAL, "collect.sacct_timeout_seconds", "greater than 0"),
    ("[site]\ntimezone = 'Mars/Olympus'\n" + MINIMAL, "site.timezone", "unknown time zone"),
    ("[site]\ntimezone = 5\n" + MINIMAL, "site.timezone", "must be a string"),
    ("[site]\nname = 'x'\n", "qos", "no QoS configured"),
    ("qos = []\n", "qos", "no QoS configured"),
    ("qos = 'avery'\n", "qos", "array of tables"),
    ("[[qos]]\nlimits = {cpus = 1}\n", "qos[0].name", "missing"),
    ("[[qos]]\nname = 'a,b'\n", "qos[0].name", "not a usable QoS name"),
    ("[[qos]]\nname = 'a'\n[[qos]]\nname = 'a'\n", "qos[1].name", "configured twice"),
    ("[[qos]]\nname = 'a'\nlimits = {cpus = 'many'}\n", "qos[0].limits.cpus", "must be a number"),
    ("[[qos]]\nname = 'a'\nlimits = {cpu = 4}\n", "qos[0].limits.cpu", "unknown key"),
    ("[[qos]]\nname = 'a'\nlimits = {gpus = -2}\n", "qos[0].limits.gpus", "at least 0"),
    ("[[qos]]\nname = 'a'\nlimits = 4\n", "qos[0].limits", "must be a table"),
    ("[[qos]]\nname = 'a'\nlabel = 'x'\n", "qos[0].label", "unknown key"),
    ("[app]\ncache = 'memcached'\n" + MINIMAL, "app.cache", "must be one of"),
    ("[app]\ncache = 'redis'\n" + MINIMAL, "app.redis_url", "needs a redis:// URL"),
    ("[app]\nrefresh_seconds = 1\n" + MINIMAL, "app.refresh_seconds", "at least 10"),
    ("[app]\nport = 80\n" + MINIMAL, "app.port", "unknown key"),
    ("[app]\nchart_top = -1\n" + MINIMAL, "app.chart_top", "at least 0"),
    ("[app]\nchart_top = 2.5\n" + MINIMAL, "app.chart_top", "must be an integer"),
    (MINIMAL + "[[deploy]]\nkind = 'ftp'\n", "deploy[0].kind", "must be one of"),
    (MINIMAL + "[[deploy]]\nkind = 'pages'\n", "deploy[0].remote", "needs the git remote"),
    (MINIMAL + "[[deploy]]\nkind = 'copy'\n", "deploy[0].dest", "needs dest"),
    (MINIMAL + "[[deploy]]\nkind = 'copy'\ndest = 'x'\nanonymize = 'yes'\n", "deploy[0].anonymize", "true or false"),
    (MINIMAL + "[[deploy]]\nkind = 'copy'\ndest = 'x'\n[[deploy]]\nkind = 'copy'\ndest = 'y'\n", "deploy[1].name", "two targets"),
    (MINIMAL + "[[deploy]]\nkind = 'copy'\ndest = 'x'\nbrnach = 'main'\n", "deploy[0].brnach", "unknown key"),
    ("[[qos]]\nname = 'a'\nlimits = 'slurm'\n", "qos[0].limits", "must be \"auto\""),
    ("[site]\nclusters = 'hpg'\n" + MINIMAL, "site.clusters", "array of cluster names"),
    ("[site]\nclusters = ['hpg', 'a b']\n" + MINIMAL, "site.clusters[1]", "not a usable cluster"),
    ("[site]\nclusters = ['hpg', 'hpg']\n" + MINIMAL, "site.clusters[1]", "listed twice"),
    ("[collect]\nincremental = 1\n" + MINIMAL, "collect.incremental", "true or false"),
    ("[collect]\noverlap_minutes = -5\n" + MINIMAL, "collect.overlap_minutes", "at least 0"),
    ("[collect]\nkeep_days = 7\n" + MINIMAL, "collect.keep_days", "at least window_days"),
    ("[collect]\nhistory_days = 7\n" + MINIMAL, "collect.history_days", "at least window_days"),
    ("[collect]\nkeep_days = 60\nhistory_days = 60\n" + MINIMAL, "collect.keep_days",
     "older name of collect.history_days"),
    ("[collect]\nbackfill_pause_seconds = -1\n" + MINIMAL, "collect.backfill_pause_seconds",
     "at least 0"),
    ("[collect]\nchunk_hours = 0\n" + MINIMAL, "collect.chunk_hours", "greater than 0"),
    ("[collect]\nhistory_days_per_cycle = 0\n" + MINIMAL, "collect.history_days_per_cycle",
     "greater than 0"),
    ("[app]\nurl_prefix = 'hpg/usage'\n" + MINIMAL, "app.url_prefix", "starts and ends with '/'"),
    ("[app]\nurl_prefix = '/hpg/../etc/'\n" + MINIMAL, "app.url_prefix", "plain path"),
    ("[app]\nurl_prefix = '/a b/'\n" + MINIMAL, "app.url_prefix", "plain path"),
    ("[app]\nauth = 'ldap'\n" + MINIMAL, "app.auth", "must be one of"),
    ("[app]\nauth = 'basic'\n" + MINIMAL, "app.htpasswd_file", "needs the password file"),
    ("[app]\nauth_header = 'X User'\n" + MINIMAL, "app.auth_header", "not an HTTP header"),
    ("[app]\nallowed_users = 'alice'\n" + MINIMAL, "app.allowed_users", "array of names"),
    ("[app]\nallowed_groups = [1]\n" + MINIMAL, "app.allowed_groups", "array of names"),
    ("[collect]\nqos_per_query = 0\n" + MINIMAL, "collect.qos_per_query", "greater than 0"),
    ("[collect]\nprocesses = 0\n" + MINIMAL, "collect.processes", "greater than 0"),
    ("[collect]\nprocesses = 1.5\n" + MINIMAL, "collect.processes", "an integer"),
    ("[plots]\nformats = 'png'\n" + MINIMAL, "plots.formats", "must be a list"),
    ("[plots]\nformats = ['png', 'jpeg']\n" + MINIMAL, "plots.formats[1]", "must be one of"),
    ("[plots]\nformats = ['png', 'png']\n" + MINIMAL, "plots.formats[1]", "given twice"),
    ("[plots]\nprocesses = 0\n" + MINIMAL, "plots.processes", "greater than 0"),
    ("[plots]\nbudget_seconds = -5\n" + MINIMAL, "plots.budget_seconds", "greater than 0"),
    ("[plots]\ncolours = 1\n" + MINIMAL, "plots.colours", "unknown key"),
    ("[app.access]\nalice = ['avery']\n" + MINIMAL, "app.access", "needs auth"),
    (MINIMAL + "[[deploy]]\nkind = 'copy'\ndest = 'x'\nqos = ['nope']\n", "deploy[0].qos[0]",
     "no QoS 'nope'"),
    (MINIMAL + "[[deploy]]\nkind = 'copy'\ndest = 'x'\nqos = 'avery'\n", "deploy[0].qos",
     "array of QoS names"),
    ("[app]\nauth = 'header'\n[app.access]\nalice = 'avery'\n" + MINIMAL, "app.access.alice",
     "array of QoS names"),
    ("[app]\nauth = 'header'\n[app.access]\nalice = ['avery', 'avry']\n" + MINIMAL,
     "app.access.alice[1]", "no QoS 'avry' is configured"),
    ("[app]\nauth = 'header'\n[app.access]\n'@' = ['avery']\n" + MINIMAL, "app.access.@",
     "user name or @"),
]


class TestBadConfig:
    @pytest.mark.parametrize(("text", "key", "problem"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
    def test_error_names_file_key_and_problem(self, tmp_path: Path, text: str, key: str,
                                              problem: str) -> None:
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.key == key
        assert problem in info.value.problem
        assert str(path) in str(info.value)
        assert key in str(info.value)

    def test_missing_file_says_how_to_make_one(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"no such file.*librarian\.example\.toml"):
            load_config(tmp_path / "nope.toml")

    def test_invalid_toml_is_reported_with_its_position(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"not valid TOML.*line 1"):
            load_config(write(tmp_path, "[site\n"))

    def test_unknown_qos_name_on_the_command_line(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, MINIMAL))
        with pytest.raises(ConfigError, match="no QoS named 'avery-x'"):
            cfg.qos_named(["avery-x"])

    def test_qos_named_keeps_config_order(self, tmp_path: Path) -> None:
        cfg = load_config(write(tmp_path, MINIMAL + '[[qos]]\nname = "b"\n'))
        assert [q.name for q in cfg.qos_named(["b", "avery"])] == ["avery", "b"]
        assert [q.name for q in cfg.qos_named(None)] == ["avery", "b"]
