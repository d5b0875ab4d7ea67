"""The digest, the alerts and their delivery (app/digest.py, app/alerts.py,
app/notify.py): hand-worked periods and alert sequences, and delivery to a
real SMTP server (aiosmtpd) and a real HTTP receiver on loopback, with the
faults a site meets: a server down, a refused login, one that never answers,
a webhook answering 500 or nothing."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app import alerts, digest
from app.notify import Message, deliver, enqueue, pending
from collector.binning import DayGrid
from collector.config import ConfigError, parse_config
from collector.history import history_of, midnights
from collector.pressure import AtLimitNow, Pressure
from tests.test_history import TZ, jobs, snapshot, t

H = 3600.0
EXE = Path(sys.executable).with_name("librarian")


# --- the digest, worked by hand ---------------------------------------------------


def week_snapshot():
    # Today is Wed 2 Dec 2026 (New York): the week is 25 Nov - 1 Dec, the one
    # before 18 - 24 Nov. ana: 10 CPUs all of 26 Nov (240 CPU-h, this week);
    # bo: 5 CPUs all of 20 Nov (120 CPU-h, last week) and 2 CPUs for 12 h on
    # 30 Nov (24 CPU-h, this week). The limit: 20 CPUs throughout.
    first, now = date(2026, 11, 10), t(2026, 12, 2, 10)
    n_days = (date(2026, 12, 3) - first).days
    grid = DayGrid(midnights(first, n_days, TZ), int(now))
    h = history_of(jobs(("ana", t(2026, 11, 26), t(2026, 11, 27), 10),
                        ("bo", t(2026, 11, 20), t(2026, 11, 21), 5),
                        ("bo", t(2026, 11, 30, 6), t(2026, 11, 30, 18), 2)), first, grid)
    return snapshot(h, now, ((int(t(2026, 11, 1)), 20.0),)), now


def config(**sections):
    return parse_config({"site": {"name": "Lab", "timezone": TZ}, "qos": [{"name": "avery"}],
                         **sections}, "test.toml", Path("/tmp"))


def test_the_periods_are_whole_local_days_before_today() -> None:
    now = t(2026, 12, 2, 10)
    week, before = digest.periods("week", now, TZ)
    assert (week.first, week.days, before.first) == (date(2026, 11, 25), 7, date(2026, 11, 18))
    month, before = digest.periods("month", now, TZ)
    assert (month.label, month.days, before.label, before.days) == \
        ("November 2026", 30, "October 2026", 31)
    with pytest.raises(ValueError, match="not a digest period"):
        digest.periods("year", now, TZ)


def test_a_week_digest_by_hand() -> None:
    snap, now = week_snapshot()
    d = digest.build(config(), [snap], {"steps": {}}, now, "week")
    (q,) = d.qos
    cpu = next(f for f in q.figures if f.key == "NCPUS")
    assert (cpu.this, cpu.last) == (pytest.approx(264), pytest.approx(120))
    assert cpu.share == pytest.approx(100 * 264 / (20 * 168))      # 7.9% of 3,360 CPU-h
    assert cpu.last_share == pytest.approx(100 * 120 / (20 * 168))
    assert cpu.unused == pytest.approx(20 * 168 - 264)
    assert q.jobs == (2, 1)
    assert [(u, round(c), round(s)) for u, c, _, s in q.top] == [("ana", 240, 91), ("bo", 24, 9)]
    assert list(q.daily["ana"]) == [0, 240, 0, 0, 0, 0, 0]
    assert list(q.daily["bo"]) == [0, 0, 0, 0, 0, 24, 0]
    words = digest.text(d)
    assert d.subject == "Librarian weekly digest: Lab, 25 Nov to 01 Dec 2026"
    assert "264 CPU-h (+120% on last week's 120), 8% of the limit (last week 4%); " \
           "3,096 CPU-h of it unused" in words
    assert "2 jobs started (+100% on last week's 1)" in words
    assert "Top users: ana 240 CPU-h (91%); bo 24 CPU-h (9%)" in words
    md = digest.markdown(d)
    assert md.startswith("**Librarian weekly digest: Lab")
    assert "- Top users: ana 240 CPU-h (91%)" in md
    png = digest.chart_png(q)
    assert png is not None
    assert png.startswith(b"\x89PNG")
    page = digest.html(d, {"avery": "chart-0"})
    assert "src='cid:chart-0'" in page
    assert "http" not in page


def test_the_health_line_says_what_failed_and_how_old_the_data_is() -> None:
    snap, now = week_snapshot()
    status = {"steps": {"collect": {"ok": False, "error": "sacct timed out", "started": now - 60,
                                    "failed_in_row": 4}}}
    d = digest.build(config(), [snap], status, now + 7200, "week")
    assert not d.health.ok
    line = " ".join(d.health.lines)
    assert "sacct timed out" in line
    assert "failed 4 cycles in a row" in line
    assert "The data is 2.0 h old" in line


# --- alerts ---------------------------------------------------------------------


def pressure_snapshot(at_limit_bins: list[float], now_at: bool):
    snap, now = week_snapshot()
    n = len(at_limit_bins)
    start = int(now) - (n - 1) * 3600 - 1800   # now is half-way into the last bin
    p = Pressure(at_limit=np.array(at_limit_bins), waiting_at_limit=np.zeros(n), peak=np.zeros(n))
    held = (AtLimitNow("NCPUS", 20, 20, (("ana", 12.0), ("bo", 8.0)), 3, None),) if now_at else ()
    return replace(snap, window_start=start, n_bins=n, pressure={"NCPUS": p},
                   limit_now=held), now


def test_at_limit_counts_the_unbroken_stretch_back_from_now() -> None:
    # bins: 1800 s at the limit (the end of a bin), 3 full bins, the current half bin.
    snap, _ = pressure_snapshot([0, 1800, 3600, 3600, 3600, 1800], now_at=True)
    (c,) = alerts.at_limit(snap, hours=3.9)     # 1800 + 3 x 3600 + 1800 s: 4.0 h
    assert c.title == "avery has been at its CPUs limit for 4.0 h"
    assert c.detail == "20 of 20 CPUs held (ana 12, bo 8); 3 job(s) wait for CPUs"
    assert alerts.at_limit(snap, hours=4.1) == []
    free_now, _ = pressure_snapshot([3600] * 6, now_at=False)
    assert alerts.at_limit(free_now, hours=1) == []


def test_an_alert_starts_once_clears_once_and_the_rate_limit_holds_back_a_flap() -> None:
    c = alerts.Condition("at_limit|avery|NGPUS", "avery has been at its GPUs limit for 5.0 h",
                         qos="avery")
    state: dict = {"alerts": {}}
    sent = []
    timeline = [(0, [c]), (600, [c]),
                (1200, []), (1800, []),   # clear 20 min after the start: held back (60 min) ...
                (4000, [c]),              # ... back in force: the last word still stands
                (4600, []),               # clear, and the hour has passed: told now
                (9000, []), (9600, [c]), (16000, [c]), (20000, [])]
    for at, found in timeline:
        state, events = alerts.step(state, found, float(at), rate_limit_minutes=60)
        sent += [(at, e.kind) for e in events]
    assert sent == [(0, "start"), (4600, "clear"), (9600, "start"), (20000, "clear")]
    # Without the rate limit every change is told, once.
    state, sent = {"alerts": {}}, []
    for at, found in timeline:
        state, events = alerts.step(state, found, float(at), rate_limit_minutes=0)
        sent += [(at, e.kind) for e in events]
    assert sent == [(0, "start"), (1200, "clear"), (4000, "start"), (4600, "clear"),
                    (9600, "start"), (20000, "clear")]


def test_a_start_held_back_by_the_rate_limit_is_sent_when_it_still_stands() -> None:
    c = alerts.Condition("stale|avery", "avery's data is 1.0 h old", qos="avery")
    state, sent = {"alerts": {}}, []
    for at, found in [(0, [c]), (100, []), (200, [c]), (3700, [c])]:
        state, events = alerts.step(state, found, float(at), rate_limit_minutes=60)
        sent += [(at, e.kind) for e in events]
    assert sent == [(0, "start")]          # the clear at 100 is held back, then moot
    state, events = alerts.step(state, [], 7400.0, rate_limit_minutes=60)
    assert [e.kind for e in events] == ["clear"]
    assert alerts.page_lines(state, "avery") == []


def test_hog_needs_a_big_share_for_long_while_others_wait() -> None:
    snap, now = week_snapshot()
    n = 6
    start = int(now) - (n - 1) * 3600 - 1800
    users = ("ana", "bo")
    held = np.array([[0, 5, 16, 16, 16, 16], [0, 0, 0, 0, 0, 0]], dtype=float)
    queued = np.array([[0, 0, 0, 0, 0, 0], [0, 0, 4, 4, 4, 4]], dtype=float)
    snap = replace(snap, users=users, window_start=start, n_bins=n,
                   series={**{k: np.zeros((2, n)) for k in snap.series},
                           "NCPUS": held, "QUEUED_NCPUS": queued},
                   current={**{k: np.zeros(2) for k in snap.current},
                            "NCPUS": np.array([16.0, 0]), "QUEUED_NCPUS": np.array([0, 4.0])},
                   thresholds={**snap.thresholds, "NCPUS": 20.0},
                   pressure={"NCPUS": Pressure(np.zeros(n), np.zeros(n), np.zeros(n))})
    (c,) = alerts.hogs(snap, percent=75, hours=3)       # 80% for 3.5 h, bo waiting
    assert c.key == "hog|avery|NCPUS|ana"
    assert c.title == "ana holds 80% of avery's CPUs limit while others wait"
    assert alerts.hogs(snap, percent=75, hours=4) == []
    assert alerts.hogs(snap, percent=85, hours=1) == []
    no_queue = replace(snap, current={**snap.current, "QUEUED_NCPUS": np.zeros(2)})
    assert alerts.hogs(no_queue, percent=75, hours=1) == []


def test_the_failed_and_stale_rules() -> None:
    snap, now = week_snapshot()
    st = {"steps": {"collect": {"ok": False, "failed_in_row": 3, "error": "sacct: boom"}}}
    assert [c.key for c in alerts.failed(st, 3)] == ["failed|collect"]
    assert alerts.failed(st, 4) == []
    assert alerts.stale(snap, now + 1860, cycles=3, interval_minutes=10) == [
        alerts.Condition("stale|avery", "avery's data is 0.5 h old",
                         "more than 3 collect cycles of 10 min", "avery")]
    assert alerts.stale(snap, now + 1800, cycles=3, interval_minutes=10) == []   # 3 cycles: not yet


def test_a_status_counts_failures_in_a_row() -> None:
    from collector.status import record_step
    s: dict = {"steps": {}}
    for ok in (False, False, True, False):
        s = record_step(s, "collect", ok, 0.0, 1.0, None if ok else "x")
    assert s["steps"]["collect"]["failed_in_row"] == 1
    s = record_step(s, "collect", False, 0.0, 1.0, "x")
    assert s["steps"]["collect"]["failed_in_row"] == 2


def test_the_page_names_no_member_in_an_anonymised_copy() -> None:
    state, _ = alerts.step({"alerts": {}}, [
        alerts.Condition("hog|avery|NCPUS|ana", "ana holds 80% of avery's CPUs limit while "
                         "others wait", qos="avery"),
        alerts.Condition("failed|collect", "the collect has failed 3 cycles in a row")], 0.0, 60)
    named = alerts.page_lines(state, "avery")
    assert "Alert: ana holds 80% of avery's CPUs limit while others wait." in named
    assert "Alert: the collect has failed 3 cycles in a row." in named
    anonymous = alerts.page_lines(state, "avery", with_names=False)
    assert not any("ana" in line for line in anonymous)
    assert alerts.page_lines(state, "avery-b") == ["Alert: the collect has failed 3 cycles in a row."]


# --- configuration ----------------------------------------------------------------


@pytest.mark.parametrize(("section", "key"), [
    ({"notify": {"smtp": {"host": "mail", "from": "librarian", "to": ["a@b.edu"]}}},
     "notify.smtp.from"),
    ({"notify": {"smtp": {"host": "mail", "from": "l@b.edu", "to": ["a@b.edu", "Ana <a@b>"]}}},
     "notify.smtp.to[1]"),
    ({"notify": {"smtp": {"host": "mail", "from": "l@b.edu"}}}, "notify.smtp.to"),
    ({"notify": {"smtp": {"host": "mail", "from": "l@b.edu", "to": "a@b.edu", "port": 0}}},
     "notify.smtp.port"),
    ({"notify": {"webhook": {"url": "hooks.example/x"}}}, "notify.webhook.url"),
    ({"notify": {"budget_seconds": 0}}, "notify.budget_seconds"),
    ({"alerts": {"hog_percent": 60}}, "alerts.hog_hours"),
    ({"alerts": {"at_limit_hour": 4}}, "alerts.at_limit_hour"),
    ({"alerts": {"failed_cycles": 2.5}}, "alerts.failed_cycles"),
    ({"alerts": {"hog_percent": 160, "hog_hours": 2}}, "alerts.hog_percent"),
    ({"digest": {"period": "day"}}, "digest.period"),
])
def test_a_bad_address_or_rule_is_refused_naming_the_key(section: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(**section)
    assert err.value.key == key


def test_the_command_line_refuses_a_bad_rule_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "librarian.toml").write_text('[[qos]]\nname = "avery"\n[alerts]\nhog_hours = 3\n')
    out = subprocess.run([str(EXE), "digest", "--config", str(tmp_path / "librarian.toml"),
                          "--dry-run"], capture_output=True, text=True, check=False)
    assert out.returncode == 2
    assert "alerts.hog_percent: the hog rule needs both" in out.stderr


# --- delivery: a real SMTP server and a real webhook receiver on loopback -----------------


class Inbox:
    def __init__(self) -> None:
        self.mails: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def smtp_with_login() -> Iterator[tuple[int, Inbox]]:
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"right"
        return AuthResult(success=ok, handled=False)   # False: aiosmtpd answers 535 itself

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=check,
                            auth_require_tls=False)
    controller.start()
    yield port, inbox
    controller.stop()


class Hook:
    """A loopback HTTP receiver: answers each POST with the next status (200
    when none is left), or never answers when the status is None."""

    def __init__(self, statuses: list[int | None]) -> None:
        self.statuses, self.bodies = list(statuses), []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = hook.statuses.pop(0) if hook.statuses else 200
                if status is None:
                    time.sleep(30)
                    return
                hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notify_config(tmp_path: Path, smtp_port: int | None = None, hook: str | None = None,
                  budget: float = 20, **smtp_extra):
    notify: dict = {"budget_seconds": budget}
    if smtp_port is not None:
        notify["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "starttls": False,
                          "from": "librarian@lab.example", "to": ["leader@lab.example"],
                          "timeout_seconds": 5, **smtp_extra}
    if hook is not None:
        notify["webhook"] = {"url": hook, "timeout_seconds": 5}
    return parse_config({"site": {"name": "Lab", "timezone": TZ, "data_dir": str(tmp_path)},
                         "qos": [{"name": "avery"}], "notify": notify}, "t.toml", tmp_path)


def the_digest_message():
    snap, now = week_snapshot()
    d = digest.build(config(), [snap], {"steps": {}}, now, "week")
    png = digest.chart_png(d.qos[0])
    return Message(digest.key_of(d), d.subject, digest.text(d), digest.markdown(d),
                   digest.html(d, {"avery": "chart-0"}), {"chart-0": png}), d


def test_the_digest_is_mailed_with_its_chart_inline_and_posted(tmp_path: Path,
                                                               smtp_server) -> None:
    port, inbox = smtp_server
    hook = Hook([200])
    try:
        cfg = notify_config(tmp_path, port, hook.url)
        message, d = the_digest_message()
        assert enqueue(tmp_path, message, ("smtp", "webhook"))
        report = deliver(cfg)
        assert report.ok, report.errors
        assert sorted(report.sent) == sorted([f"{d.subject} -> smtp", f"{d.subject} -> webhook"])
    finally:
        hook.close()
    (mail,) = inbox.mails
    assert mail["Subject"] == d.subject
    assert mail["To"] == "leader@lab.example"
    plain = mail.get_body(("plain",)).get_content()
    assert plain.replace("\r\n", "\n") == digest.text(d)   # SMTP lines end in CRLF
    html_part = mail.get_body(("html",))
    assert "cid:chart-0" in html_part.get_content()
    (image,) = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == "<chart-0>"
    assert image.get_content().startswith(b"\x89PNG")
    assert hook.bodies == [{"text": digest.markdown(d)}]
    assert pending(tmp_path) == []
    assert not enqueue(tmp_path, message, ("smtp", "webhook"))   # sent: never queued again


def test_a_webhook_answering_500_is_retried_without_mailing_twice(tmp_path: Path,
                                                                  smtp_server) -> None:
    port, inbox = smtp_server
    hook = Hook([500])
    try:
        cfg = notify_config(tmp_path, port, hook.url)
        message, _ = the_digest_message()
        enqueue(tmp_path, message, ("smtp", "webhook"))
        first = deliver(cfg)
        assert "HTTP 500" in first.errors["webhook"]
        assert "secret-token" not in first.errors["webhook"]     # the hook's secret stays out
        assert first.waiting == 1
        assert len(inbox.mails) == 1
        (_, doc), = pending(tmp_path)
        assert doc["delivered"] == {"smtp": True, "webhook": False}
        second = deliver(cfg)
        assert second.ok
        assert second.waiting == 0
        assert len(inbox.mails) == 1          # mailed once, all told
        assert len(hook.bodies) == 2
        assert hook.bodies[0] == hook.bodies[1]
    finally:
        hook.close()


def test_a_refused_login_and_a_missing_password_are_errors(tmp_path: Path, smtp_with_login,
                                                           monkeypatch) -> None:
    port, inbox = smtp_with_login
    cfg = notify_config(tmp_path, port, user="avery", password_env="LAB_SMTP_PASSWORD")
    message, _ = the_digest_message()
    enqueue(tmp_path, message, ("smtp",))
    monkeypatch.delenv("LAB_SMTP_PASSWORD", raising=False)
    assert "$LAB_SMTP_PASSWORD is empty" in deliver(cfg).errors["smtp"]
    monkeypatch.setenv("LAB_SMTP_PASSWORD", "wrong")
    assert "refused the login of 'avery'" in deliver(cfg).errors["smtp"]
    assert inbox.mails == []
    monkeypatch.setenv("LAB_SMTP_PASSWORD", "right")
    assert deliver(cfg).ok
    assert len(inbox.mails) == 1


def test_starttls_with_the_sites_own_ca_and_a_login(tmp_path: Path, monkeypatch) -> None:
    import ssl

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins = []

    def check(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, session.ssl is not None))
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=check)
    controller.start()
    try:
        monkeypatch.setenv("LIBRARIAN_SMTP_PASSWORD", "s3cret")
        message, _ = the_digest_message()
        untrusted = notify_config(tmp_path / "a", port, starttls=True, user="avery")
        enqueue(untrusted.site.data_dir, message, ("smtp",))
        assert "CERTIFICATE_VERIFY_FAILED" in deliver(untrusted).errors["smtp"]
        plain = notify_config(tmp_path / "b", port, starttls=False, user="avery")
        enqueue(plain.site.data_dir, message, ("smtp",))
        assert not deliver(plain).ok          # the server will not talk without STARTTLS
        trusted = notify_config(tmp_path / "c", port, starttls=True, user="avery",
                                ca_file=str(cert))
        enqueue(trusted.site.data_dir, message, ("smtp",))
        assert deliver(trusted).ok
    finally:
        controller.stop()
    assert logins == [(b"avery", True)]       # the password went over TLS only
    assert len(inbox.mails) == 1


def test_servers_down_or_silent_cost_no_more_than_the_budget(tmp_path: Path) -> None:
    closed = free_port()                         # nothing listens: connection refused
    silent = socket.socket()                     # accepts, never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    hook = Hook([None])                          # takes the POST, never answers
    try:
        message, _ = the_digest_message()
        down = notify_config(tmp_path / "a", closed)
        enqueue(down.site.data_dir, message, ("smtp",))
        assert "refused" in deliver(down).errors["smtp"].lower()

        cfg = notify_config(tmp_path / "b", silent.getsockname()[1], hook.url, budget=3)
        enqueue(cfg.site.data_dir, message, ("smtp", "webhook"))
        started = time.monotonic()
        report = deliver(cfg)
        spent = time.monotonic() - started
        assert set(report.errors) == {"smtp", "webhook"}
        assert report.waiting == 1
        # The budget is the bound (3 s here), not each server's patience: far less
        # than the two 5 s timeouts plus the receiver's 30 s of silence.
        assert spent < 3 + 2, spent
        (_, doc), = pending(cfg.site.data_dir)
        assert doc["delivered"] == {"smtp": False, "webhook": False}
        assert doc["attempts"] >= 1
    finally:
        silent.close()
        hook.close()


def test_an_unreadable_outbox_file_is_set_aside_not_fatal(tmp_path: Path, smtp_server) -> None:
    port, inbox = smtp_server
    cfg = notify_config(tmp_path, port)
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "broken.json").write_text("{not json")
    message, _ = the_digest_message()
    enqueue(tmp_path, message, ("smtp",))
    assert deliver(cfg).ok
    assert len(inbox.mails) == 1
    assert (tmp_path / "outbox" / "broken.bad").exists()


# --- the cycle end to end: `librarian run` with alerts and a mail server ----------------


def test_a_cycle_tells_of_failures_once_and_of_the_clear_once(tmp_path: Path, samples: Path,
                                                              smtp_server) -> None:
    from app.operations import run_cycle
    from collector.config import load_config
    from collector.status import read_status
    from tests import fake_sacct
    from tests.test_ops import write_config

    port, inbox = smtp_server
    bin_dir = tmp_path / "slurm"
    extra = (f'\n[notify]\nbudget_seconds = 10\n[notify.smtp]\nhost = "127.0.0.1"\nport = {port}\n'
             'starttls = false\nfrom = "librarian@lab.example"\nto = ["leader@lab.example"]\n'
             "[alerts]\nfailed_cycles = 2\nrate_limit_minutes = 0\n")
    config = load_config(write_config(tmp_path, bin_dir, extra))
    now = 1795640400   # 2026-11-25T21:00Z
    fake_sacct.install(bin_dir, prints=samples / "sacct_avery.txt")
    steps = [(r.step, r.ok) for r in run_cycle(config, now=now)]
    assert steps == [("collect", True), ("export", True), ("alerts", True), ("notify", True)]
    fake_sacct.install(bin_dir, exit_code=1, stderr="sacct: error: slurmdbd: Connection refused")
    for k in (1, 2, 3):   # three failed cycles: the alert starts at the second, once
        run_cycle(config, now=now + 600 * k)
    assert [m["Subject"].strip() for m in inbox.mails] == [
        "[Librarian Test cluster] the collect has failed 2 cycles in a row"]
    assert "Connection refused" in inbox.mails[0].get_content()
    manifest = json.loads((tmp_path / "data" / "site" / "data" / "manifest.json").read_text())
    assert "Alert: the collect has failed 2 cycles in a row." in manifest["alerts"]["avery"]

    # The mail server goes away: collect and export still run, the clear waits in the outbox.
    fake_sacct.install(bin_dir, prints=samples / "sacct_avery.txt")
    closed = free_port()
    down = load_config(write_config(tmp_path, bin_dir, extra.replace(f"port = {port}",
                                                                     f"port = {closed}")))
    results = {r.step: r for r in run_cycle(down, now=now + 2400)}
    assert all(results[s].ok for s in ("collect", "export", "alerts"))
    assert not results["notify"].ok
    assert "refused" in read_status(tmp_path / "data")["steps"]["notify"]["error"].lower()
    assert len(pending(tmp_path / "data")) == 1
    from collector.status import failures
    assert [f[0] for f in failures(read_status(tmp_path / "data"))] == [
        "sending of the digest and alerts (they wait in the outbox)"]   # the Dash page's line
    # Back up: the clear is sent, once, and the page's alert is gone. The export
    # of that cycle (before sending) still says the last sending failed.
    run_cycle(config, now=now + 3000)

    def manifest_failures() -> list[str]:
        path = tmp_path / "data" / "site" / "data" / "manifest.json"
        return json.loads(path.read_text())["failures"]
    assert any("sending of the digest" in f for f in manifest_failures())
    run_cycle(config, now=now + 3600)
    assert manifest_failures() == []
    assert [m["Subject"].strip() for m in inbox.mails][1:] == [
        "[Librarian Test cluster] cleared: the collect has failed 2 cycles in a row"]
    manifest = json.loads((tmp_path / "data" / "site" / "data" / "manifest.json").read_text())
    assert manifest["alerts"]["avery"] == []


def test_the_digest_command_sends_once_and_prints_on_a_dry_run(tmp_path: Path, samples: Path,
                                                               smtp_server) -> None:
    port, inbox = smtp_server
    (tmp_path / "librarian.toml").write_text(
        '[site]\nname = "Lab"\ntimezone = "UTC"\ndata_dir = "data"\n'
        "[collect]\nbin_seconds = 3600\nwindow_days = 1\nhistory_days = 30\n"
        '[[qos]]\nname = "avery"\nlimits = { cpus = 430, gpus = 39, memory_gb = 3359 }\n'
        f'[notify.smtp]\nhost = "127.0.0.1"\nport = {port}\nstarttls = false\n'
        'from = "librarian@lab.example"\nto = ["leader@lab.example", "deputy@lab.example"]\n')
    cfg = str(tmp_path / "librarian.toml")
    subprocess.run([str(EXE), "collect", "--config", cfg, "--sacct-file",
                    str(samples / "sacct_avery.txt"), "--now", "2026-11-25T21:00:00+00:00",
                    "--no-plots", "-q"], check=True)
    now = "2026-11-26T09:00:00+00:00"   # the week before: 19 to 25 Nov, the lab's jobs in it
    dry = subprocess.run([str(EXE), "digest", "--config", cfg, "--dry-run", "--now", now,
                          "--html", str(tmp_path / "d.html")],
                         capture_output=True, text=True, check=True)
    assert dry.stdout.startswith("Librarian weekly digest: Lab, 19 Nov to 25 Nov 2026\n")
    from collector.snapshot import read_snapshot
    started = int(read_snapshot(tmp_path / "data" / "data_avery.json").history.started.sum())
    assert started > 0
    assert f"{started} jobs started (new on last week's 0)" in dry.stdout
    assert "The data is 12.0 h old" in dry.stdout
    assert "(dry run: nothing sent; it would go to smtp)" in dry.stdout
    assert inbox.mails == []
    assert "<html>" in (tmp_path / "d.html").read_text()
    for _ in range(2):   # the same period twice: mailed once
        sent = subprocess.run([str(EXE), "digest", "--config", cfg, "--now", now],
                              capture_output=True, text=True, check=False)
        assert sent.returncode == 0, sent.stderr
    (mail,) = inbox.mails
    assert mail["To"] == "leader@lab.example, deputy@lab.example"
    body = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body == dry.stdout.split("(dry run")[0]


def test_the_example_configurations_digest_and_alerts_parse_when_uncommented() -> None:
    import tomllib

    from collector.config import EXAMPLE_PATH

    text = EXAMPLE_PATH.read_text()
    block = text[text.index("# [notify]"):]
    uncommented = "\n".join(line[2:] for line in block.splitlines() if line.startswith("# "))
    doc = tomllib.loads(text[:text.index("# The weekly digest")] + uncommented)
    cfg = parse_config(doc, "example", Path("/tmp"))
    assert cfg.notify.smtp is not None
    assert cfg.notify.webhook is not None
    assert cfg.alerts.any
    assert cfg.digest.period == "week"


def test_idle_gpus_only_where_utilisation_is_recorded_and_long_enough() -> None:
    from collector.jobtable import JobTable

    now = 1_800_000_000.0
    h = 3600.0
    # job: start, end (nan: running), gpus, recorded utilisation (nan: not recorded)
    rows = [(1, now - 3 * h, np.nan, 2, 0.0),       # running 3 h at 0%: alert
            (2, now - 3 * h, now - h, 1, 0.0),      # ended an hour ago after 2 h at 0%: alert
            (3, now - 3 * h, np.nan, 2, 35.0),      # busy
            (4, now - 3 * h, np.nan, 2, np.nan),    # not recorded: never a guess
            (5, now - 0.5 * h, np.nan, 4, 0.0),     # idle, but only 30 min so far
            (6, now - 4 * 86400, now - 3 * 86400, 1, 0.0),   # long ago
            (7, now - 3 * h, np.nan, 0, 0.0)]       # no GPUs
    n = len(rows)
    jobs = JobTable.build(
        job_id=np.array([r[0] for r in rows]), user=np.zeros(n, dtype=np.int64),
        qos=np.zeros(n, dtype=np.int64), state=np.zeros(n, dtype=np.int64),
        submit=np.array([r[1] for r in rows]), start=np.array([r[1] for r in rows]),
        end=np.array([r[2] for r in rows]), elapsed=np.zeros(n), nnodes=np.ones(n),
        cpus=np.ones(n), gpus=np.array([float(r[3]) for r in rows]), mem_gib=np.ones(n),
        gpu_util=np.array([r[4] for r in rows]), users=("ana",), qos_names=("avery",),
        states=("RUNNING",))
    found = alerts.idle_gpus(jobs, "avery", now, hours=1)
    assert [c.key for c in found] == ["idle_gpu|avery|1", "idle_gpu|avery|2"]
    assert found[0].title == "ana's job 1 on avery held 2 GPU(s) at 0% utilisation for 3.0 h"
    assert (found[0].detail, found[1].detail) == ("still running", "ended")
    assert alerts.idle_gpus(jobs, "avery-b", now, hours=1) == []
