"""Real nginx and Redis for the production tests, started on loopback ports.

Debian's nginx and redis-server (installed by `scripts/install.sh test`),
each in a temporary folder with its own configuration, logs and PID, stopped
when the test ends. Under CI a missing one fails the test (tests/browser.need).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.browser import free_port, need

REPO = Path(__file__).resolve().parents[1]
NGINX = "/usr/sbin/nginx"
REDIS = "/usr/bin/redis-server"


def documented_location() -> str:
    """The nginx `location` block of docs/deploy.md, exactly as documented."""
    text = (REPO / "docs" / "deploy.md").read_text()
    block = re.search(r"```nginx\n(.*?)```", text, re.S)
    assert block, "docs/deploy.md has no ```nginx block"
    return block.group(1)


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (exit {proc.poll()}): {detail}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def nginx(tmp: Path, upstream: str, location: str | None = None) -> Iterator[str]:
    """nginx on a free loopback port with the documented location block,
    proxying to `upstream` (host:port); yields its base URL."""
    need("Debian's nginx (/usr/sbin/nginx)", Path(NGINX).exists())
    folder = tmp / "nginx"
    folder.mkdir()
    folder.chmod(0o777)
    port = free_port()
    block = (location or documented_location()).replace("127.0.0.1:8050", upstream)
    # nginx's workers run as nobody and buffer large responses in temporary
    # files: those go where nobody can write (pytest's folders are root-only).
    scratch = Path(tempfile.mkdtemp(prefix="librarian-nginx-"))
    scratch.chmod(0o755)
    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (scratch / k).mkdir(mode=0o700)
        shutil.chown(scratch / k, user="nobody")
    temps = "\n".join(f"    {k}_temp_path {scratch}/{k};" for k in
                      ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (folder / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {folder}/access.log;
{temps}
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
{block}
        location / {{ return 404; }}
    }}
}}
""")
    with open(folder / "stderr", "wb") as err:
        proc = subprocess.Popen([NGINX, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        _wait_port(port, proc, "nginx", folder / "stderr")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    """redis-server on a free loopback port, nothing saved to disk; yields its URL."""
    need("Debian's redis-server (/usr/bin/redis-server)", Path(REDIS).exists())
    folder = tmp / "redis"
    folder.mkdir()
    port = free_port()
    log = folder / "redis.log"
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder), "--logfile", str(log),
                             "--daemonize", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


def redis_keys(url: str, pattern: str) -> list[str]:
    cli = shutil.which("redis-cli")
    need("redis-cli", cli is not None)
    port = url.rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run([cli, "-p", port, "--scan", "--pattern", pattern],
                         capture_output=True, text=True, check=True, timeout=10)
    return out.stdout.split()
