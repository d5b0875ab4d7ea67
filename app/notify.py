"""Sending the digest and the alerts: an outbox in data_dir, SMTP and a webhook.

A message is first written to `data_dir/outbox/<id>.json` (atomically), then
delivered to each configured channel; each channel's success is recorded in
the file as soon as it happens, so a message that reached the mail server but
not the webhook is retried on the webhook alone at the next cycle, and never
mailed twice. A message's id is made from what it reports (the alert and its
start, the digest and its period), so queueing it again is a no-op.

Every send runs inside one budget (notify.budget_seconds) for the whole
delivery: each connection gets at most the time left, and a server that
accepts and never answers is abandoned when the budget ends (the send runs in
a daemon thread that is joined with the time left). A channel that fails is
not tried again in the same cycle; its error goes to the status file and the
page, and the message waits in the outbox for the next cycle.

Webhook: a POST of {"text": markdown}, the shape Slack's, Mattermost's and
Microsoft Teams' incoming webhooks all accept.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import logging
import os
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from collector.atomic import write_atomic
from collector.config import Config, SmtpConfig, WebhookConfig

log = logging.getLogger("librarian.notify")
OUTBOX = "outbox"
CHANNELS = ("smtp", "webhook")


@dataclass(frozen=True)
class Message:
    """One thing to tell: a subject, plain text, markdown (webhooks), and
    optionally HTML with its inline images (cid -> PNG bytes)."""

    key: str                 # what it reports, stable: the id is made from it
    subject: str
    text: str
    markdown: str
    html: str = ""
    images: dict[str, bytes] = field(default_factory=dict)
    created: float = 0.0

    @property
    def id(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:20]


class NotifyError(Exception):
    """One channel could not take one message (what and why)."""


def outbox_dir(data_dir: Path) -> Path:
    return data_dir / OUTBOX


def _doc(m: Message, delivered: dict[str, bool], attempts: int, error: str) -> dict[str, Any]:
    return {"id": m.id, "key": m.key, "subject": m.subject, "text": m.text,
            "markdown": m.markdown, "html": m.html, "created": m.created,
            "images": {k: base64.b64encode(v).decode() for k, v in m.images.items()},
            "delivered": delivered, "attempts": attempts, "last_error": error}


def _write(path: Path, doc: dict[str, Any]) -> None:
    body = json.dumps(doc, indent=1, sort_keys=True).encode()
    write_atomic(path, lambda fh: fh.write(body))


def enqueue(data_dir: Path, message: Message, channels: tuple[str, ...]) -> bool:
    """Put a message in the outbox for these channels; False when it is
    already there or was already delivered (its id is in the sent log)."""
    folder = outbox_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{message.id}.json"
    if path.exists() or message.id in _sent_ids(data_dir):
        return False
    m = message if message.created else dataclasses.replace(message, created=time.time())
    _write(path, _doc(m, dict.fromkeys(channels, False), 0, ""))
    return True


SENT_LOG = "sent.log"
SENT_KEEP = 2000


def _sent_ids(data_dir: Path) -> set[str]:
    try:
        lines = (outbox_dir(data_dir) / SENT_LOG).read_text().splitlines()
    except OSError:
        return set()
    return {ln.split(" ", 1)[0] for ln in lines if ln}


def _log_sent(data_dir: Path, doc: dict[str, Any]) -> None:
    path = outbox_dir(data_dir) / SENT_LOG
    try:
        old = path.read_text().splitlines()[-(SENT_KEEP - 1):]
    except OSError:
        old = []
    body = "\n".join([*old, f"{doc['id']} {int(time.time())} {doc['subject']}"]) + "\n"
    write_atomic(path, lambda fh: fh.write(body.encode()))


def pending(data_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The outbox's messages, oldest first; an unreadable file is set aside
    (renamed .bad) and counted in the log, never fatal."""
    folder = outbox_dir(data_dir)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or not isinstance(doc.get("delivered"), dict):
                raise ValueError("not an outbox message")
        except (OSError, ValueError) as err:
            log.error("outbox: %s is unreadable (%s); set aside as .bad", path.name, err)
            path.rename(path.with_suffix(".bad"))
            continue
        out.append((path, doc))
    return sorted(out, key=lambda pd: (pd[1].get("created", 0), pd[0].name))


def _message(doc: dict[str, Any]) -> Message:
    return Message(key=doc["key"], subject=doc["subject"], text=doc["text"],
                   markdown=doc.get("markdown", doc["text"]), html=doc.get("html", ""),
                   images={k: base64.b64decode(v) for k, v in doc.get("images", {}).items()},
                   created=doc.get("created", 0.0))


# --- the channels ---------------------------------------------------------------


def email_of(m: Message, smtp: SmtpConfig) -> EmailMessage:
    """The mail: plain text, and HTML with its images inline (cid:), never remote."""
    mail = EmailMessage()
    mail["Subject"] = m.subject
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(smtp.to)
    mail["Date"] = formatdate(localtime=True)
    mail["Message-ID"] = make_msgid(idstring=m.id, domain=smtp.sender.split("@", 1)[1])
    mail.set_content(m.text)
    if m.html:
        mail.add_alternative(m.html, subtype="html")
        html_part = mail.get_body(("html",))
        assert isinstance(html_part, EmailMessage)
        for cid, png in m.images.items():
            html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>",
                                  filename=f"{cid}.png")
    return mail


def send_smtp(m: Message, smtp: SmtpConfig, timeout: float) -> str:
    password = os.environ.get(smtp.password_env, "") if smtp.user else ""
    if smtp.user and not password:
        raise NotifyError(f"notify.smtp.user is set but ${smtp.password_env} is empty")
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as server:
            if smtp.starttls:
                context = ssl.create_default_context(
                    cafile=str(smtp.ca_file) if smtp.ca_file else None)
                server.starttls(context=context)
            if smtp.user:
                server.login(smtp.user, password)
            refused = server.send_message(email_of(m, smtp))
    except smtplib.SMTPAuthenticationError as err:
        raise NotifyError(f"{smtp.host}:{smtp.port} refused the login of {smtp.user!r} "
                          f"({err.smtp_code})") from err
    except smtplib.SMTPNotSupportedError as err:
        raise NotifyError(f"{smtp.host}:{smtp.port}: {err} (set notify.smtp.starttls = false "
                          "only for a server on a trusted network)") from err
    except (smtplib.SMTPException, OSError) as err:
        raise NotifyError(f"{smtp.host}:{smtp.port}: {err or type(err).__name__}") from err
    if refused:
        raise NotifyError(f"{smtp.host} refused {', '.join(refused)}")
    return f"mailed to {', '.join(smtp.to)}"


def send_webhook(m: Message, hook: WebhookConfig, timeout: float) -> str:
    body = json.dumps({"text": m.markdown}).encode()
    request = urllib.request.Request(hook.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    where = hook.url.split("?", 1)[0].rsplit("/", 1)[0]   # no secret path end in errors
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            status = reply.status
    except urllib.error.HTTPError as err:
        err.close()   # the error is the answer too: its socket must be let go
        raise NotifyError(f"webhook {where}/… answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise NotifyError(f"webhook {where}/…: {reason}") from err
    if not 200 <= status < 300:
        raise NotifyError(f"webhook {where}/… answered HTTP {status}")
    return "posted to the webhook"


def _bounded(action: Callable[[], str], seconds: float, what: str) -> str:
    """Run `action` in a daemon thread for at most `seconds`; NotifyError when
    it fails or is still waiting on its server then."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["ok"] = action()
        except Exception as err:  # reported below, whatever it is
            box["error"] = err

    worker = threading.Thread(target=go, daemon=True, name=f"librarian-{what}")
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        raise NotifyError(f"{what}: no answer within the budget left ({seconds:.1f} s of "
                          "notify.budget_seconds)")
    if "error" in box:
        err = box["error"]
        raise err if isinstance(err, NotifyError) else NotifyError(f"{what}: {err}")
    return str(box["ok"])


@dataclass
class Delivery:
    sent: list[str] = field(default_factory=list)      # "subject -> channel"
    errors: dict[str, str] = field(default_factory=dict)  # channel -> the first error
    waiting: int = 0                                    # messages left in the outbox

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        parts = [f"{len(self.sent)} sent"]
        if self.waiting:
            parts.append(f"{self.waiting} waiting in the outbox")
        parts += [f"{ch}: {e}" for ch, e in self.errors.items()]
        return "; ".join(parts)


def channels_of(config: Config) -> tuple[str, ...]:
    n = config.notify
    return tuple(ch for ch, c in (("smtp", n.smtp), ("webhook", n.webhook)) if c is not None)


def deliver(config: Config, senders: dict[str, Callable[[Message, float], str]] | None = None,
            clock: Callable[[], float] = time.monotonic) -> Delivery:
    """Send what waits in the outbox, oldest first, within notify.budget_seconds."""
    n = config.notify
    data_dir = config.site.data_dir
    if senders is None:
        senders = {}
        if n.smtp is not None:
            smtp = n.smtp
            senders["smtp"] = lambda m, t: send_smtp(m, smtp, min(t, smtp.timeout_seconds))
        if n.webhook is not None:
            hook = n.webhook
            senders["webhook"] = lambda m, t: send_webhook(m, hook, min(t, hook.timeout_seconds))
    deadline = clock() + n.budget_seconds
    report = Delivery()
    for path, doc in pending(data_dir):
        message = _message(doc)
        for channel, done in doc["delivered"].items():
            if done or channel in report.errors:
                continue
            send = senders.get(channel)
            if send is None:   # the channel was removed from the config: drop it
                doc["delivered"][channel] = True
                continue
            left = deadline - clock()
            if left <= 0:
                report.errors.setdefault(channel, "the budget (notify.budget_seconds) ran out")
                continue
            try:
                _bounded(functools.partial(send, message, left), left, channel)
            except NotifyError as err:
                report.errors[channel] = str(err)
                doc["attempts"] = doc.get("attempts", 0) + 1
                doc["last_error"] = f"{channel}: {err}"
                log.error("notify: %s: %s", message.subject, err)
                continue
            doc["delivered"][channel] = True
            report.sent.append(f"{message.subject} -> {channel}")
            log.info("notify: %s -> %s", message.subject, channel)
            _write(path, doc)   # recorded at once: never sent twice on this channel
        if all(doc["delivered"].values()):
            _log_sent(data_dir, doc)
            path.unlink(missing_ok=True)
        else:
            _write(path, doc)
            report.waiting += 1
    return report
