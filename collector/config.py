"""Configuration: one TOML file read into frozen dataclasses (collector/config_model.py).

Every key is checked: an unknown key, a wrong type or a bad value raises
`ConfigError` naming the file and the dotted key, so a typo never passes
silently. Defaults live in the dataclasses, nowhere else.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collector.config_model import (
    AUTH_KINDS,
    CACHE_KINDS,
    DEPLOY_KINDS,
    DIGEST_PERIODS,
    LIMIT_MODES,
    PLOT_FORMATS,
    AlertsConfig,
    AppConfig,
    CollectConfig,
    Config,
    ConfigError,
    DeployTarget,
    DigestConfig,
    EfficiencyConfig,
    NotifyConfig,
    OpsConfig,
    Panel,
    PlotsConfig,
    QosConfig,
    SiteConfig,
    SmtpConfig,
    WebhookConfig,
)
from collector.observables import LIMIT_KEYS, Limits
from collector.schedule import cron_every

ENV_VAR = "LIBRARIAN_CONFIG"
DEFAULT_NAME = "librarian.toml"
EXAMPLE_PATH = Path(__file__).with_name("librarian.example.toml")


# --- validation helpers -------------------------------------------------------


class _Checker:
    """Takes typed values out of a TOML table, naming dotted keys on error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str | None, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, got {_kind(value)}")
        return value

    def no_unknown(self, table: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for name in table:
            if name not in allowed:
                dotted = f"{prefix}.{name}" if prefix else name
                raise self.fail(
                    dotted, f"unknown key (allowed here: {', '.join(sorted(allowed))})"
                )

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {_kind(value)} {value!r}")
        return value

    def number(self, value: Any, key: str, *, integer: bool = False, minimum: float = 0,
               strictly_positive: bool = False, maximum: float | None = None) -> float:
        ok_types = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_types):
            wanted = "an integer" if integer else "a number"
            raise self.fail(key, f"must be {wanted}, got {_kind(value)} {value!r}")
        if strictly_positive and value <= 0:
            raise self.fail(key, f"must be greater than 0, got {value!r}")
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise self.fail(key, f"must be at most {maximum}, got {value!r}")
        return value


def _unique(c: _Checker, values: list[str], key: str, problem: str) -> None:
    """Fail on the first repeated value, naming its place: `key` holds {} for
    the index ("qos[{}].name", "site.clusters[{}]")."""
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise c.fail(key.format(i), problem.format(value))
        seen.add(value)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string",
        list: "an array", dict: "a table",
    }.get(type(value), type(value).__name__)


# --- sections -----------------------------------------------------------------


def _site(c: _Checker, raw: Mapping[str, Any], base_dir: Path) -> SiteConfig:
    c.no_unknown(raw, "site", {"name", "timezone", "data_dir", "slurm_bin", "clusters"})
    d = SiteConfig()
    name = c.string(raw.get("name", d.name), "site.name")
    tz = c.string(raw.get("timezone", d.timezone), "site.timezone")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise c.fail(
            "site.timezone", f"unknown time zone {tz!r} (use an IANA name such as 'America/New_York')"
        ) from None
    data_dir = Path(c.string(raw.get("data_dir", str(d.data_dir)), "site.data_dir"))
    if not str(data_dir).strip():
        raise c.fail("site.data_dir", "must not be empty")
    # Relative to the configuration file, so scrontab and cron (whose working
    # directory is $HOME) find the same folder as an interactive run.
    data_dir = data_dir if data_dir.is_absolute() else base_dir / data_dir
    slurm_bin_raw = c.string(raw.get("slurm_bin", ""), "site.slurm_bin")
    slurm_bin = Path(slurm_bin_raw) if slurm_bin_raw else None
    clusters = raw.get("clusters", [])
    if not isinstance(clusters, list) or not all(isinstance(x, str) for x in clusters):
        raise c.fail("site.clusters", f"must be an array of cluster names, got {clusters!r}")
    for i, cluster in enumerate(clusters):
        if not cluster.strip() or any(ch in cluster for ch in ",/ \t"):
            raise c.fail(f"site.clusters[{i}]", f"not a usable cluster name: {cluster!r}")
    _unique(c, clusters, "site.clusters[{}]", "cluster {!r} is listed twice")
    return SiteConfig(name=name, timezone=tz, data_dir=data_dir, slurm_bin=slurm_bin,
                      clusters=tuple(clusters))


def _collect(c: _Checker, raw: Mapping[str, Any]) -> CollectConfig:
    c.no_unknown(raw, "collect", {"bin_seconds", "window_days", "sacct_timeout_seconds",
                                  "incremental", "overlap_minutes", "keep_days", "history_days",
                                  "chunk_hours", "backfill_pause_seconds",
                                  "history_days_per_cycle", "qos_per_query", "processes"})
    d = CollectConfig()
    bin_seconds = int(c.number(raw.get("bin_seconds", d.bin_seconds), "collect.bin_seconds",
                               integer=True, strictly_positive=True))
    window_days = int(c.number(raw.get("window_days", d.window_days), "collect.window_days",
                               integer=True, strictly_positive=True))
    timeout = float(c.number(raw.get("sacct_timeout_seconds", d.sacct_timeout_seconds),
                             "collect.sacct_timeout_seconds", strictly_positive=True))
    if 86400 % bin_seconds:
        raise c.fail("collect.bin_seconds",
                     f"must divide a day (86400 s) evenly, got {bin_seconds}")
    incremental = raw.get("incremental", d.incremental)
    if not isinstance(incremental, bool):
        raise c.fail("collect.incremental", f"must be true or false, got {incremental!r}")
    overlap = int(c.number(raw.get("overlap_minutes", d.overlap_minutes),
                           "collect.overlap_minutes", integer=True))
    if "keep_days" in raw and "history_days" in raw:
        raise c.fail("collect.keep_days", "is the older name of collect.history_days: "
                     "give one of them")
    key = "history_days" if "history_days" in raw else "keep_days"
    keep_days = int(c.number(raw[key], f"collect.{key}", integer=True)) if key in raw \
        else max(d.keep_days, window_days)
    per_cycle = int(c.number(raw.get("history_days_per_cycle", d.history_days_per_cycle),
                             "collect.history_days_per_cycle", integer=True,
                             strictly_positive=True))
    pause = float(c.number(raw.get("backfill_pause_seconds", d.backfill_pause_seconds),
                           "collect.backfill_pause_seconds"))
    chunk = int(c.number(raw.get("chunk_hours", d.chunk_hours), "collect.chunk_hours",
                         integer=True, strictly_positive=True))
    per_query = int(c.number(raw.get("qos_per_query", d.qos_per_query), "collect.qos_per_query",
                             integer=True, strictly_positive=True))
    processes = int(c.number(raw.get("processes", d.processes), "collect.processes",
                             integer=True, strictly_positive=True))
    if keep_days and keep_days < window_days:
        raise c.fail(f"collect.{key}",
                     f"must be 0 (the window) or at least window_days ({window_days}), "
                     f"got {keep_days}")
    return CollectConfig(bin_seconds=bin_seconds, window_days=window_days,
                         sacct_timeout_seconds=timeout, incremental=incremental,
                         overlap_minutes=overlap, keep_days=keep_days, chunk_hours=chunk,
                         backfill_pause_seconds=pause, history_days_per_cycle=per_cycle,
                         qos_per_query=per_query, processes=processes)


def _plots(c: _Checker, raw: Mapping[str, Any]) -> PlotsConfig:
    c.no_unknown(raw, "plots", {"formats", "processes", "budget_seconds"})
    d = PlotsConfig()
    formats = raw.get("formats", list(d.formats))
    if not isinstance(formats, list):
        raise c.fail("plots.formats", f"must be a list of formats, got {_kind(formats)}")
    for i, f in enumerate(formats):
        if f not in PLOT_FORMATS:
            raise c.fail(f"plots.formats[{i}]", f"must be one of {', '.join(PLOT_FORMATS)}, "
                         f"got {f!r}")
    _unique(c, formats, "plots.formats[{}]", "format {!r} is given twice")
    processes = int(c.number(raw.get("processes", d.processes), "plots.processes", integer=True,
                             strictly_positive=True))
    budget = float(c.number(raw.get("budget_seconds", d.budget_seconds), "plots.budget_seconds",
                            strictly_positive=True))
    return PlotsConfig(formats=tuple(formats), processes=processes, budget_seconds=budget)


def _app(c: _Checker, raw: Mapping[str, Any], base_dir: Path) -> AppConfig:
    c.no_unknown(raw, "app", {"refresh_seconds", "collect_interval_minutes", "cache",
                              "cache_dir", "redis_url", "url_prefix", "auth", "auth_header",
                              "allowed_users", "allowed_groups", "htpasswd_file", "access",
                              "chart_top"})
    d = AppConfig()
    refresh = int(c.number(raw.get("refresh_seconds", d.refresh_seconds), "app.refresh_seconds",
                           integer=True, minimum=10))
    interval = int(c.number(raw.get("collect_interval_minutes", d.collect_interval_minutes),
                            "app.collect_interval_minutes", integer=True, strictly_positive=True))
    try:
        cron_every(interval)
    except ValueError as err:
        raise c.fail("app.collect_interval_minutes", str(err)) from None
    cache = c.string(raw.get("cache", d.cache), "app.cache")
    if cache not in CACHE_KINDS:
        raise c.fail("app.cache", f"must be one of {', '.join(CACHE_KINDS)}, got {cache!r}")
    cache_dir_raw = c.string(raw.get("cache_dir", ""), "app.cache_dir")
    cache_dir = None
    if cache_dir_raw:
        cache_dir = Path(cache_dir_raw) if Path(cache_dir_raw).is_absolute() else base_dir / cache_dir_raw
    redis_url = c.string(raw.get("redis_url", ""), "app.redis_url")
    if cache == "redis" and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise c.fail("app.redis_url", f"cache = 'redis' needs a redis:// URL, got {redis_url!r}")
    prefix = c.string(raw.get("url_prefix", d.url_prefix), "app.url_prefix")
    if not (prefix.startswith("/") and prefix.endswith("/")) or "//" in prefix or \
            any(part in (".", "..") for part in prefix.split("/")) or \
            any(ch in prefix for ch in "?#%\\ \"'<>"):
        raise c.fail("app.url_prefix",
                     f"must be a plain path that starts and ends with '/', like "
                     f"\"/hpg/usage/\"; got {prefix!r}")
    auth = c.string(raw.get("auth", d.auth), "app.auth")
    if auth not in AUTH_KINDS:
        raise c.fail("app.auth", f"must be one of {', '.join(AUTH_KINDS)}, got {auth!r}")
    header = c.string(raw.get("auth_header", d.auth_header), "app.auth_header")
    if not header or any(not (ch.isalnum() or ch == "-") for ch in header):
        raise c.fail("app.auth_header", f"not an HTTP header name: {header!r}")
    lists = {}
    for key in ("allowed_users", "allowed_groups"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise c.fail(f"app.{key}", f"must be an array of names, got {value!r}")
        lists[key] = tuple(value)
    htpasswd_raw = c.string(raw.get("htpasswd_file", ""), "app.htpasswd_file")
    htpasswd = None
    if htpasswd_raw:
        htpasswd = Path(htpasswd_raw) if Path(htpasswd_raw).is_absolute() else base_dir / htpasswd_raw
    if auth == "basic" and htpasswd is None:
        raise c.fail("app.htpasswd_file",
                     "auth = 'basic' needs the password file (make it with `librarian passwd`)")
    chart_top = int(c.number(raw.get("chart_top", d.chart_top), "app.chart_top", integer=True,
                             minimum=0))
    access_raw = c.table(raw.get("access", {}), "app.access")
    access = []
    for who, what in access_raw.items():
        key = f"app.access.{who}"
        if not who.lstrip("@") or any(ch.isspace() for ch in who):
            raise c.fail(key, "must be a user name or @ and a Unix group name")
        if not isinstance(what, list) or not all(isinstance(v, str) and v for v in what):
            raise c.fail(key, f"must be an array of QoS names (or \"*\": all), got {what!r}")
        access.append((who, tuple(what)))
    if access and auth == "none":
        raise c.fail("app.access", "needs auth = 'header' or 'basic': with 'none' the app "
                     "does not know who is visiting")
    return AppConfig(refresh_seconds=refresh, collect_interval_minutes=interval, cache=cache,
                     cache_dir=cache_dir, redis_url=redis_url, url_prefix=prefix, auth=auth,
                     auth_header=header, allowed_users=lists["allowed_users"],
                     allowed_groups=lists["allowed_groups"], htpasswd_file=htpasswd,
                     access=tuple(access), chart_top=chart_top)


def _ops(c: _Checker, raw: Mapping[str, Any], base_dir: Path) -> OpsConfig:
    c.no_unknown(raw, "ops", {"export_dir", "job_names", "watchdog_wait_seconds",
                              "command_timeout_seconds"})
    d = OpsConfig()
    export_raw = c.string(raw.get("export_dir", ""), "ops.export_dir")
    export_dir = None
    if export_raw:
        export_dir = Path(export_raw) if Path(export_raw).is_absolute() else base_dir / export_raw
    names = raw.get("job_names", list(d.job_names))
    if not isinstance(names, list) or len(names) not in (2, 3) or \
            not all(isinstance(n, str) and n and not any(ch.isspace() for ch in n) for n in names):
        raise c.fail("ops.job_names", "must be two or three job names: [run job, watchdog job, "
                                      "digest job]")
    if len(names) == 2:
        names = [*names, d.job_names[2]]
    _unique(c, names, "ops.job_names[{}]", "job name {!r} is given twice")
    wait = float(c.number(raw.get("watchdog_wait_seconds", d.watchdog_wait_seconds),
                          "ops.watchdog_wait_seconds"))
    timeout = float(c.number(raw.get("command_timeout_seconds", d.command_timeout_seconds),
                             "ops.command_timeout_seconds", minimum=1))
    return OpsConfig(export_dir=export_dir, job_names=tuple(names), watchdog_wait_seconds=wait,
                     command_timeout_seconds=timeout)


def _efficiency(c: _Checker, raw: Mapping[str, Any]) -> EfficiencyConfig:
    d = EfficiencyConfig()
    names = [f.name for f in dataclasses.fields(EfficiencyConfig)]
    c.no_unknown(raw, "efficiency", set(names))
    values = {}
    for name in names:
        percent = name.endswith("_percent")
        values[name] = float(c.number(raw.get(name, getattr(d, name)), f"efficiency.{name}",
                                      maximum=100 if percent else None))
    return EfficiencyConfig(**values)


# A mail address as the digest needs it: local part, "@", a domain; no spaces,
# no display name (`to = ["Ana <ana@x>"]` is refused, naming the key).
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


def _address(c: _Checker, value: Any, key: str) -> str:
    text = c.string(value, key)
    if not _ADDRESS.match(text):
        raise c.fail(key, f"not a mail address: {text!r} (write it as name@example.edu)")
    return text


def _timeout(c: _Checker, t: Mapping[str, Any], key: str) -> float:
    return float(c.number(t.get("timeout_seconds", 10.0), f"{key}.timeout_seconds",
                          strictly_positive=True, maximum=300))


def _path(c: _Checker, value: Any, key: str, base_dir: Path) -> Path | None:
    text = c.string(value, key)
    if not text:
        return None
    return Path(text) if Path(text).is_absolute() else base_dir / text


def _notify(c: _Checker, raw: Mapping[str, Any], base_dir: Path) -> NotifyConfig:
    c.no_unknown(raw, "notify", {"smtp", "webhook", "budget_seconds"})
    d = NotifyConfig()
    budget = float(c.number(raw.get("budget_seconds", d.budget_seconds), "notify.budget_seconds",
                            strictly_positive=True, maximum=600))
    smtp = None
    if "smtp" in raw:
        t = c.table(raw["smtp"], "notify.smtp")
        c.no_unknown(t, "notify.smtp", {"host", "port", "starttls", "user", "password_env",
                                        "from", "to", "timeout_seconds", "ca_file"})
        for need in ("host", "from", "to"):
            if need not in t:
                raise c.fail(f"notify.smtp.{need}", "missing: the SMTP channel needs host, "
                                                    "from and to")
        host = c.string(t["host"], "notify.smtp.host").strip()
        if not host or any(ch.isspace() or ch in "/@" for ch in host):
            raise c.fail("notify.smtp.host", f"not a host name: {t['host']!r}")
        to = t["to"] if isinstance(t["to"], list) else [t["to"]]
        if not to:
            raise c.fail("notify.smtp.to", "must name at least one address")
        starttls = t.get("starttls", True)
        if not isinstance(starttls, bool):
            raise c.fail("notify.smtp.starttls", f"must be true or false, got {starttls!r}")
        env = c.string(t.get("password_env", "LIBRARIAN_SMTP_PASSWORD"), "notify.smtp.password_env")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            raise c.fail("notify.smtp.password_env", f"not an environment variable name: {env!r}")
        smtp = SmtpConfig(
            host=host, sender=_address(c, t["from"], "notify.smtp.from"),
            to=tuple(_address(c, a, f"notify.smtp.to[{i}]") for i, a in enumerate(to)),
            port=int(c.number(t.get("port", 587), "notify.smtp.port", integer=True,
                              strictly_positive=True, maximum=65535)),
            starttls=starttls, user=c.string(t.get("user", ""), "notify.smtp.user"),
            password_env=env, timeout_seconds=_timeout(c, t, "notify.smtp"),
            ca_file=_path(c, t.get("ca_file", ""), "notify.smtp.ca_file", base_dir))
    webhook = None
    if "webhook" in raw:
        t = c.table(raw["webhook"], "notify.webhook")
        c.no_unknown(t, "notify.webhook", {"url", "timeout_seconds"})
        url = c.string(t.get("url", ""), "notify.webhook.url")
        if not re.match(r"^https?://[^\s/]+", url):
            raise c.fail("notify.webhook.url", f"must be an http:// or https:// URL, got {url!r}")
        webhook = WebhookConfig(url=url, timeout_seconds=_timeout(c, t, "notify.webhook"))
    return NotifyConfig(smtp=smtp, webhook=webhook, budget_seconds=budget)


def _digest(c: _Checker, raw: Mapping[str, Any]) -> DigestConfig:
    c.no_unknown(raw, "digest", {"period", "top_users"})
    d = DigestConfig()
    period = c.string(raw.get("period", d.period), "digest.period")
    if period not in DIGEST_PERIODS:
        raise c.fail("digest.period", f"must be one of {', '.join(DIGEST_PERIODS)}, got {period!r}")
    top = int(c.number(raw.get("top_users", d.top_users), "digest.top_users", integer=True,
                       strictly_positive=True, maximum=100))
    return DigestConfig(period=period, top_users=top)


def _alerts(c: _Checker, raw: Mapping[str, Any]) -> AlertsConfig:
    d = AlertsConfig()
    names = [f.name for f in dataclasses.fields(AlertsConfig)]
    c.no_unknown(raw, "alerts", set(names))
    values: dict[str, Any] = {}
    for name in names:
        whole = name.endswith("_cycles")
        number = c.number(raw.get(name, getattr(d, name)), f"alerts.{name}", integer=whole,
                          maximum=100 if name.endswith("_percent") else None)
        values[name] = int(number) if whole else float(number)
    if bool(values["hog_percent"]) != bool(values["hog_hours"]):
        missing = "hog_hours" if values["hog_percent"] else "hog_percent"
        raise c.fail(f"alerts.{missing}", "the hog rule needs both hog_percent and hog_hours")
    return AlertsConfig(**values)


def _deploy(c: _Checker, raw: Any) -> tuple[DeployTarget, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise c.fail("deploy", f"must be an array of tables ([[deploy]]), got {_kind(raw)}")
    out: list[DeployTarget] = []
    for i, item in enumerate(raw):
        key = f"deploy[{i}]"
        t = c.table(item, key)
        c.no_unknown(t, key, {"name", "kind", "remote", "branch", "dest", "anonymize",
                              "top_users", "secret_env", "qos"})
        kind = c.string(t.get("kind", ""), f"{key}.kind")
        if kind not in DEPLOY_KINDS:
            raise c.fail(f"{key}.kind", f"must be one of {', '.join(DEPLOY_KINDS)}, got {kind!r}")
        strings = {k: c.string(t.get(k, d), f"{key}.{k}") for k, d in
                   (("name", kind), ("remote", ""), ("branch", "gh-pages"), ("dest", ""),
                    ("secret_env", "LIBRARIAN_ANON_SECRET"))}
        if kind == "pages" and not strings["remote"]:
            raise c.fail(f"{key}.remote", "a pages target needs the git remote to push to")
        if kind == "copy" and not strings["dest"]:
            raise c.fail(f"{key}.dest", "a copy target needs dest (host:path or a folder)")
        anonymize = t.get("anonymize", False)
        if not isinstance(anonymize, bool):
            raise c.fail(f"{key}.anonymize", f"must be true or false, got {anonymize!r}")
        top = int(c.number(t.get("top_users", 0), f"{key}.top_users", integer=True))
        qos = t.get("qos", [])
        if not isinstance(qos, list) or not all(isinstance(q, str) and q for q in qos):
            raise c.fail(f"{key}.qos", f"must be an array of QoS names, got {qos!r}")
        out.append(DeployTarget(kind=kind, anonymize=anonymize, top_users=top, qos=tuple(qos),
                                **strings))
    _unique(c, [d.name for d in out], "deploy[{}].name", "two targets are named {!r}")
    return tuple(out)


def _qos_list(c: _Checker, raw: Any) -> tuple[QosConfig, ...]:
    if raw is None:
        raise c.fail("qos", "no QoS configured: add at least one [[qos]] table with a name")
    if not isinstance(raw, list):
        raise c.fail("qos", f"must be an array of tables ([[qos]]), got {_kind(raw)}")
    if not raw:
        raise c.fail("qos", "no QoS configured: add at least one [[qos]] table with a name")
    out: list[QosConfig] = []
    for i, item in enumerate(raw):
        key = f"qos[{i}]"
        t = c.table(item, key)
        c.no_unknown(t, key, {"name", "limits"})
        if "name" not in t:
            raise c.fail(f"{key}.name", "missing: every [[qos]] needs a name")
        name = c.string(t["name"], f"{key}.name").strip()
        if not name or any(ch in name for ch in ",/ \t"):
            raise c.fail(f"{key}.name", f"not a usable QoS name: {t['name']!r}")
        limits_raw = t.get("limits", "auto")
        auto = True
        if isinstance(limits_raw, str):
            if limits_raw not in LIMIT_MODES:
                raise c.fail(f"{key}.limits",
                             f"must be \"auto\" (read from sacctmgr), \"none\", or a table of "
                             f"{', '.join(LIMIT_KEYS)}; got {limits_raw!r}")
            auto = limits_raw == "auto"
            limits_raw = {}
        limits_raw = c.table(limits_raw, f"{key}.limits")
        c.no_unknown(limits_raw, f"{key}.limits", set(LIMIT_KEYS))
        limits = Limits(**{
            k: float(c.number(limits_raw[k], f"{key}.limits.{k}"))
            for k in LIMIT_KEYS if k in limits_raw
        })
        out.append(QosConfig(name=name, limits=limits, auto_limits=auto))
    _unique(c, [q.name for q in out], "qos[{}].name", "QoS {!r} is configured twice")
    return tuple(out)


def parse_config(data: Mapping[str, Any], source: str, base_dir: Path) -> Config:
    """Validate a parsed TOML document into a `Config` (pure)."""
    c = _Checker(source)
    c.no_unknown(data, "", {"site", "collect", "qos", "app", "deploy", "ops", "efficiency",
                            "notify", "digest", "alerts", "plots"})
    site = _site(c, c.table(data.get("site", {}), "site"), base_dir)
    collect = _collect(c, c.table(data.get("collect", {}), "collect"))
    qos = _qos_list(c, data.get("qos"))
    app = _app(c, c.table(data.get("app", {}), "app"), base_dir)
    deploy = _deploy(c, data.get("deploy"))
    ops = _ops(c, c.table(data.get("ops", {}), "ops"), base_dir)
    efficiency = _efficiency(c, c.table(data.get("efficiency", {}), "efficiency"))
    notify = _notify(c, c.table(data.get("notify", {}), "notify"), base_dir)
    digest = _digest(c, c.table(data.get("digest", {}), "digest"))
    alerts = _alerts(c, c.table(data.get("alerts", {}), "alerts"))
    plots = _plots(c, c.table(data.get("plots", {}), "plots"))
    keys = {p.key for p in Config(site=site, collect=collect, qos=qos).panels}
    for i, target in enumerate(deploy):
        for j, name in enumerate(target.qos):
            if name not in keys:
                raise c.fail(f"deploy[{i}].qos[{j}]", f"no QoS {name!r} is configured")
    for who, what in app.access:
        for i, name in enumerate(what):
            if name != "*" and name not in keys:
                raise c.fail(f"app.access.{who}[{i}]",
                             f"no QoS {name!r} is configured (known: "
                             f"{', '.join(sorted(keys)[:10])}{', ...' if len(keys) > 10 else ''})")
    return Config(site=site, collect=collect, qos=qos, app=app, deploy=deploy, ops=ops,
                  efficiency=efficiency, notify=notify, digest=digest, alerts=alerts,
                  plots=plots, source=source)


def find_config_path(explicit: str | os.PathLike[str] | None,
                     environ: Mapping[str, str] | None = None) -> Path:
    """`--config`, else `$LIBRARIAN_CONFIG`, else `./librarian.toml`."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get(ENV_VAR):
        return Path(environ[ENV_VAR])
    return Path(DEFAULT_NAME)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML configuration file."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            source, None,
            f"no such file (pass --config, set ${ENV_VAR}, or copy librarian.example.toml "
            f"to ./{DEFAULT_NAME})",
        ) from None
    except OSError as err:
        raise ConfigError(source, None, f"cannot read: {err.strerror}") from err
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(source, None, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(source, None, f"not valid TOML: {err}") from err
    return parse_config(data, source, path.resolve().parent)


__all__ = [
    "AUTH_KINDS",
    "CACHE_KINDS",
    "DEPLOY_KINDS",
    "EXAMPLE_PATH",
    "LIMIT_MODES",
    "PLOT_FORMATS",
    "AppConfig",
    "CollectConfig",
    "Config",
    "ConfigError",
    "DeployTarget",
    "Limits",
    "OpsConfig",
    "Panel",
    "PlotsConfig",
    "QosConfig",
    "SiteConfig",
    "find_config_path",
    "load_config",
    "parse_config",
]

