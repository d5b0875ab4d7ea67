"""The configuration's model: frozen dataclasses, their defaults, and ConfigError.

Defaults live here and nowhere else; collector/config.py reads a TOML file
into these, checking every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collector.observables import Limits


class ConfigError(Exception):
    """A configuration problem, naming the file and the dotted key."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


LIMIT_MODES = ("auto", "none")


@dataclass(frozen=True)
class QosConfig:
    """A QoS to collect. `limits` holds the numbers set in the configuration;
    with `auto_limits` the others are read from Slurm (sacctmgr GrpTRES)."""

    name: str
    limits: Limits = field(default_factory=Limits)
    auto_limits: bool = True


@dataclass(frozen=True)
class SiteConfig:
    name: str = "Slurm cluster"
    timezone: str = "UTC"
    data_dir: Path = Path("data")
    slurm_bin: Path | None = None
    clusters: tuple[str, ...] = ()   # sacct -M; empty: the cluster of the local slurm.conf


@dataclass(frozen=True)
class CollectConfig:
    bin_seconds: int = 3600
    window_days: int = 30
    sacct_timeout_seconds: float = 300.0
    incremental: bool = True          # false: every cycle re-queries the whole window
    overlap_minutes: int = 60         # an incremental query reaches this far before the last cycle
    keep_days: int = 365              # [collect] history_days: kept in the store; 0: the window
    chunk_hours: int = 24             # a backfill asks sacct for at most this much at once
    # A backfill's queries of days older than the window wait this long apart
    # (the window's own come at once: the page needs them).
    backfill_pause_seconds: float = 1.0
    # Each cycle after the first reads this many older days of the history
    # (newest first) until it is complete: a year fills in within two hours.
    history_days_per_cycle: int = 30
    # One sacct (and squeue) call names at most this many QoS in --qos; more
    # QoS take more calls, whose answers together are the one answer.
    qos_per_query: int = 200
    # Many QoS (more than collector/collect.py POOL_FROM): their files are made
    # on this many forked processes; 1: all in the collecting process.
    processes: int = 2

    @property
    def n_bins(self) -> int:
        return self.window_days * 86400 // self.bin_seconds

    @property
    def history_days(self) -> int:
        return max(self.keep_days, self.window_days)


PLOT_FORMATS = ("png", "pdf", "svg")


@dataclass(frozen=True)
class PlotsConfig:
    """The static charts `collect` draws (collector/plots.py): which formats
    (PDF costs as much again as PNG: off unless asked for), how many
    processes draw them when many QoS changed at once, and for how long a
    cycle starts drawing (the QoS left over are drawn first next cycle)."""

    formats: tuple[str, ...] = ("png",)
    processes: int = 2
    budget_seconds: float = 20.0


CACHE_KINDS = ("simple", "filesystem", "redis")
AUTH_KINDS = ("none", "header", "basic")


@dataclass(frozen=True)
class AppConfig:
    """The dashboard's settings (the collector ignores them)."""

    refresh_seconds: int = 300
    collect_interval_minutes: int = 10
    cache: str = "simple"
    cache_dir: Path | None = None
    redis_url: str = ""
    url_prefix: str = "/"              # the path the app is served under, e.g. "/hpg/usage/"
    auth: str = "none"                 # none | header (a user header set by the web server) | basic
    auth_header: str = "X-Remote-User"
    allowed_users: tuple[str, ...] = ()   # header/basic: empty means any authenticated user
    allowed_groups: tuple[str, ...] = ()  # Unix groups whose members are allowed too
    htpasswd_file: Path | None = None  # basic: "user:hash" lines (`librarian passwd`)
    # header/basic: who sees which QoS, ("alice" or "@unixgroup", (panel keys or "*")).
    # Empty: everyone let in sees every QoS.
    access: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The charts draw this many members of the view (the largest in it) and one
    # "N others" row for the rest; 0 draws every member (app/fold.py).
    chart_top: int = 20


@dataclass(frozen=True)
class OpsConfig:
    """`librarian run`, `scrontab` and `watchdog`."""

    export_dir: Path | None = None   # default: data_dir/site
    # The run, watchdog and digest jobs' names (the watchdog frees only these).
    job_names: tuple[str, ...] = ("librarian-run", "librarian-watchdog", "librarian-digest")
    watchdog_wait_seconds: float = 10.0
    # squeue, scontrol and scancel (the watchdog), and each command of `doctor`
    command_timeout_seconds: float = 60.0


@dataclass(frozen=True)
class EfficiencyConfig:
    """When a user's use of what they held earns a quiet flag on the efficiency
    table (defaults: common practice at large centres). A flag needs both the
    low share and enough of the resource for it to matter."""

    cpu_below_percent: float = 60.0       # CPU efficiency under this ...
    cpu_over_cpu_hours: float = 100.0     # ... over more than this many CPU-hours held
    memory_below_percent: float = 35.0    # peak memory under this share of what was held ...
    memory_over_gb_hours: float = 500.0   # ... over more than this many GB-hours
    time_below_percent: float = 20.0      # jobs ran for under this share of their time limit
    gpu_below_percent: float = 25.0       # GPU utilisation under this (or a GPU job at 0%)


@dataclass(frozen=True)
class SmtpConfig:
    """Where the digest and alerts are mailed. The password is never in the
    file: it is read from the environment variable `password_env`."""

    host: str
    to: tuple[str, ...]
    sender: str                      # [notify.smtp] from
    port: int = 587
    starttls: bool = True
    user: str = ""
    password_env: str = "LIBRARIAN_SMTP_PASSWORD"
    timeout_seconds: float = 10.0
    ca_file: Path | None = None      # STARTTLS: a CA bundle of the site's own (default: the system's)


@dataclass(frozen=True)
class WebhookConfig:
    """An incoming webhook (Slack, Mattermost, Teams: all take {"text": ...})."""

    url: str
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class NotifyConfig:
    smtp: SmtpConfig | None = None
    webhook: WebhookConfig | None = None
    # The most a cycle spends sending (every channel, every message together):
    # collect and export come first and never wait on it.
    budget_seconds: float = 20.0

    @property
    def configured(self) -> bool:
        return self.smtp is not None or self.webhook is not None


DIGEST_PERIODS = ("week", "month")


@dataclass(frozen=True)
class DigestConfig:
    period: str = "week"     # what `librarian scrontab` schedules
    top_users: int = 5


@dataclass(frozen=True)
class AlertsConfig:
    """Each rule is off when its number is 0 (the default)."""

    at_limit_hours: float = 0.0        # the QoS at a limit for more than this
    hog_percent: float = 0.0           # one user holding more than this share of a limit ...
    hog_hours: float = 0.0             # ... for more than this, while others wait
    idle_gpu_hours: float = 0.0        # a GPU job at 0% utilisation (where recorded) this long
    failed_cycles: int = 0             # the collect failing this many cycles in a row
    stale_cycles: int = 0              # the data older than this many cycles
    rate_limit_minutes: float = 60.0   # at most one message per alert in this time

    @property
    def any(self) -> bool:
        return bool(self.at_limit_hours or (self.hog_percent and self.hog_hours)
                    or self.idle_gpu_hours or self.failed_cycles or self.stale_cycles)


DEPLOY_KINDS = ("pages", "copy")


@dataclass(frozen=True)
class DeployTarget:
    """Where `librarian deploy` publishes the static export."""

    name: str
    kind: str                      # "pages": a git branch; "copy": rsync/scp/local folder
    remote: str = ""               # pages: the git remote (URL or path)
    branch: str = "gh-pages"       # pages
    dest: str = ""                 # copy: host:path or a local folder
    anonymize: bool = False        # replace user names with keyed pseudonyms
    top_users: int = 0             # >0: keep the N busiest users, fold the rest into "others"
    secret_env: str = "LIBRARIAN_ANON_SECRET"  # the environment variable holding the key
    qos: tuple[str, ...] = ()      # a group's own site: these QoS alone (empty: every QoS)


@dataclass(frozen=True)
class Panel:
    """One tab of the dashboard: a QoS on a cluster, and its snapshot."""

    qos: str
    cluster: str = ""     # "" : the local cluster (no sacct -M)
    several_clusters: bool = False

    @property
    def key(self) -> str:
        """The name in URLs, tab ids and export files: the QoS, or qos@cluster."""
        return f"{self.qos}@{self.cluster}" if self.several_clusters else self.qos

    @property
    def label(self) -> str:
        return f"{self.qos} ({self.cluster})" if self.several_clusters else self.qos

    @property
    def file_cluster(self) -> str:
        """The cluster part of the snapshot's file name ("" with one cluster)."""
        return self.cluster if self.several_clusters else ""


@dataclass(frozen=True)
class Config:
    site: SiteConfig
    collect: CollectConfig
    qos: tuple[QosConfig, ...]
    app: AppConfig = field(default_factory=AppConfig)
    deploy: tuple[DeployTarget, ...] = ()
    ops: OpsConfig = field(default_factory=OpsConfig)
    efficiency: EfficiencyConfig = field(default_factory=EfficiencyConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    plots: PlotsConfig = field(default_factory=PlotsConfig)
    source: str = "<defaults>"

    @property
    def export_dir(self) -> Path:
        return self.ops.export_dir or self.site.data_dir / "site"

    @property
    def clusters(self) -> tuple[str, ...]:
        """The clusters to ask sacct about; ("",) is the local one."""
        return self.site.clusters or ("",)

    @property
    def panels(self) -> tuple[Panel, ...]:
        several = len(self.site.clusters) > 1
        return tuple(Panel(q.name, cluster, several) for cluster in self.clusters
                     for q in self.qos)

    def qos_named(self, names: list[str] | None) -> tuple[QosConfig, ...]:
        """The configured QoS with these names (all when None), in config order."""
        if not names:
            return self.qos
        known = {q.name for q in self.qos}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                self.source,
                "qos",
                f"no QoS named {', '.join(map(repr, unknown))}; configured: "
                f"{', '.join(sorted(known))}",
            )
        return tuple(q for q in self.qos if q.name in names)
