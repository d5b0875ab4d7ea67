"""Access control and response headers for the dashboard's Flask server.

Access (`[app] auth`), for hosts that do not restrict the app themselves:
  "none"    the default: the web server in front decides who gets through.
  "header"  trust a user name set by the web server in front (Shibboleth or
            Apache's REMOTE_USER passed on as e.g. X-Remote-User); a request
            without it is refused. Only safe when the app is reachable through
            that web server alone (gunicorn bound to 127.0.0.1 or a socket):
            anyone who can reach gunicorn directly can set the header.
  "basic"   HTTP basic auth against a file of "user:hash" lines made by
            `librarian passwd` (werkzeug's salted scrypt hashes). Use it only
            behind HTTPS: the browser sends the password with every request.
With `allowed_users` / `allowed_groups` (Unix groups, members looked up on
this host) only those users get in; empty lists let in anyone signed in.
Every path is covered, assets and callbacks included.

With an access map (`[app.access]`: a user or "@group" -> the QoS they may
see, "*" for all) a visitor sees only their QoS: the layout (tabs or picker,
the overview) is made per visit from them, every callback answers from
them, and a request naming another QoS (?qos=, or a callback's URL or QoS
control) is refused whole with 403 before any of it is computed.

Headers on every response: a Content-Security-Policy that allows only this
origin's scripts plus the hashes of the page's few inline scripts (no
'unsafe-inline' or 'unsafe-eval' for scripts; styles need 'unsafe-inline'
because Plotly sets style attributes), frame-ancestors 'none' (and
X-Frame-Options for old browsers), X-Content-Type-Options: nosniff, and a
same-origin Referrer-Policy.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import hmac
import logging
import os
import pwd
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import parse_qs

from flask import Flask, Response, request
from werkzeug.security import check_password_hash, generate_password_hash

from app.ids import TABS as QOS_CONTROL_ID
from app.ids import URL as URL_ID
from collector.config import AppConfig

log = logging.getLogger("librarian.access")


# --- password file ------------------------------------------------------------


class PasswordFileError(Exception):
    """The password file cannot be read or has a bad line (named)."""


def read_password_file(path: Path) -> dict[str, str]:
    """user -> hash. Blank lines and '#' comments are skipped; a bad line is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PasswordFileError(f"{path}: cannot read ({err.strerror})") from err
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed or (":" not in hashed and "$" not in hashed):
            raise PasswordFileError(f"{path}: line {number} is not 'user:hash' "
                                    "(make entries with `librarian passwd`)")
        out[user] = hashed
    return out


def set_password(path: Path, user: str, password: str) -> None:
    """Add or replace one user's entry (the file is created 0600)."""
    if not user or ":" in user or any(ch.isspace() for ch in user):
        raise PasswordFileError(f"not a usable user name: {user!r}")
    if len(password) < 8:
        raise PasswordFileError("the password must have at least 8 characters")
    entries = read_password_file(path) if path.exists() else {}
    entries[user] = generate_password_hash(password)
    body = "".join(f"{u}:{h}\n" for u, h in sorted(entries.items()))
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.replace(tmp, path)


class PasswordFile:
    """The password file, read again when it changes; verified logins are
    remembered (by a keyed digest, never the password) because scrypt costs
    tens of milliseconds and a page makes many requests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, str] = {}
        self._ok: set[bytes] = set()
        self._key = os.urandom(32)

    def _load(self) -> None:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._entries = read_password_file(self.path)
            self._stamp, self._ok = stamp, set()

    def check(self, user: str, password: str) -> bool:
        try:
            self._load()
        except (OSError, PasswordFileError) as err:
            log.error("basic auth: %s: refusing every login until it is fixed", err)
            return False
        hashed = self._entries.get(user)
        if hashed is None:
            return False
        token = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        if token in self._ok:
            return True
        try:
            ok = check_password_hash(hashed, password)
        except (ValueError, TypeError):
            ok = False
        if ok:
            self._ok.add(token)
        return ok


# --- who may come in ----------------------------------------------------------


def in_groups(user: str, groups: Iterable[str]) -> bool:
    """Is `user` in one of these Unix groups, as a member or by primary group?
    Looked up for the one user (no listing of every account: on a site with
    LDAP that would cost a directory scan per request)."""
    try:
        primary = pwd.getpwnam(user).pw_gid
    except KeyError:
        primary = None
    for name in groups:
        try:
            g = grp.getgrnam(name)
        except KeyError:
            log.warning("allowed_groups: no group %r on this host", name)
            continue
        if user in g.gr_mem or g.gr_gid == primary:
            return True
    return False


class Access:
    def __init__(self, app: AppConfig, realm: str) -> None:
        self.kind = app.auth
        self.header = app.auth_header
        self.users = set(app.allowed_users)
        self.groups = tuple(app.allowed_groups)
        self.realm = realm.replace('"', "'")
        self.passwords = PasswordFile(app.htpasswd_file) if app.htpasswd_file else None
        self.map = app.access
        self.keys: tuple[str, ...] = ()    # every panel key (set by the app)

    def allowed(self, user: str) -> bool:
        if not self.users and not self.groups:
            return True
        # Group membership is looked up on each check: a change needs no restart.
        return user in self.users or in_groups(user, self.groups)

    def visitor(self) -> str:
        """The signed-in user of this request ("" : none, or auth = "none").
        Only after `refuse` let the request through is it checked."""
        if self.kind == "header":
            return request.headers.get(self.header, "").strip()
        if self.kind == "basic":
            auth = request.authorization
            return auth.username if auth and auth.type == "basic" and auth.username else ""
        return ""

    def visible(self, user: str, keys: Sequence[str]) -> tuple[str, ...]:
        """The QoS (panel keys, in order) `user` may see: all without an access
        map; else those the map gives the user or a Unix group of theirs."""
        if not self.map:
            return tuple(keys)
        granted: set[str] = set()
        for who, what in self.map:
            if who == user or (who.startswith("@") and in_groups(user, (who[1:],))):
                granted.update(what)
        return tuple(keys) if "*" in granted else tuple(k for k in keys if k in granted)

    def refuse(self) -> Response | None:
        """None to let the request through, else the refusal."""
        if self.kind == "none":
            return None
        user = self.visitor()
        if self.kind == "header" and not user:
            return Response("Sign-in required: this dashboard is served only through the "
                            "site's web server.\n", 401, mimetype="text/plain")
        if self.kind == "basic":
            auth = request.authorization
            if not user or self.passwords is None or auth is None or \
                    not self.passwords.check(user, auth.password or ""):
                return Response("Sign-in required.\n", 401, mimetype="text/plain", headers={
                    "WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'})
        if not self.allowed(user):
            log.info("refused %s: not in allowed_users or allowed_groups", user)
            return Response(f"{user} is not allowed to see this dashboard.\n", 403,
                            mimetype="text/plain")
        if self.map:
            return self.refuse_qos(user)
        return None

    def refuse_qos(self, user: str) -> Response | None:
        """With an access map: a visitor who may see no QoS, or a request that
        names one they may not (the page's ?qos=, a callback's URL or QoS
        control), is refused whole (403), so no part of another group's view
        is ever computed for them."""
        mine = set(self.visible(user, self.keys))
        if not mine:
            log.info("refused %s: app.access gives them no QoS", user)
            return Response(f"{user} may see no QoS here (app.access).\n", 403,
                            mimetype="text/plain")
        asked = set(request.args.getlist("qos")) | _qos_in_callback()
        if asked - mine:
            log.info("refused %s: asked for QoS %s (app.access)", user,
                     ", ".join(sorted(asked - mine)))
            return Response("Not allowed (app.access).\n", 403, mimetype="text/plain")
        return None


def _qos_in_callback() -> set[str]:
    """The QoS a Dash callback request names: in the URL's search (?qos=) and
    in the QoS control's value, wherever they are among its inputs and states."""
    if not request.path.endswith("/_dash-update-component") or not request.is_json:
        return set()
    body = request.get_json(silent=True) or {}
    found: set[str] = set()
    for item in [*(body.get("inputs") or []), *(body.get("state") or [])]:
        if not isinstance(item, dict):
            continue
        value = item.get("value")
        if item.get("id") == URL_ID and item.get("property") == "search" and isinstance(value, str):
            found.update(parse_qs(value.lstrip("?")).get("qos", []))
        elif item.get("id") == QOS_CONTROL_ID and isinstance(value, str):
            found.add(value)
    return {v for v in found if v}


# --- headers ------------------------------------------------------------------


def script_hash(script: str) -> str:
    """A CSP source for one inline script's text."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def content_security_policy(script_hashes: Iterable[str]) -> str:
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(sorted(set(script_hashes))),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def secure(server: Flask, app: AppConfig, realm: str, script_hashes: Iterable[str],
           access: Access | None = None) -> Access:
    """Install the access check and the headers on the Flask server."""
    access = access or Access(app, realm)
    policy = content_security_policy(script_hashes)

    if access.kind != "none":
        server.before_request(access.refuse)

    @server.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    return access
