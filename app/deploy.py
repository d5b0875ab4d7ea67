"""`librarian deploy`: publish the static export to each configured target.

Targets are independent: one failing does not stop the others, and the
result says which failed and why. `pages` pushes to a branch of a git remote
through a temporary clone (the user's own checkout is never touched),
creating the orphan branch on first use, adding `.nojekyll`, and committing
only when something changed. `copy` mirrors the export to a local folder, or
to host:path with rsync (scp when rsync is missing). Nothing retries: a
failure is reported once, and the next cycle tries again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from app.export import Privacy, copy_tree, export_site
from collector.config import Config, DeployTarget

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Librarian", "GIT_AUTHOR_EMAIL": "librarian@localhost",
                "GIT_COMMITTER_NAME": "Librarian", "GIT_COMMITTER_EMAIL": "librarian@localhost"}
TIMEOUT = 300


class DeployError(Exception):
    """A target could not be published; the message says what to fix."""


@dataclass(frozen=True)
class Outcome:
    target: str
    ok: bool
    detail: str


def _run(args: list[str], cwd: Path | None = None, what: str = "") -> str:
    env = {**os.environ, **GIT_IDENTITY, "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise DeployError(f"{args[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise DeployError(f"{what or args[0]} did not finish within {TIMEOUT} s") from None
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        raise DeployError(f"{what or ' '.join(args[:2])} failed: {' | '.join(said[-3:])}")
    return proc.stdout


def check_reachable(target: DeployTarget) -> str:
    """Where a target publishes, if it can be reached without a prompt (git
    ls-remote, ssh ... true, or a folder to write in); DeployError says why not."""
    if target.kind == "pages":
        _run(["git", "ls-remote", "--heads", target.remote], what=f"reading {target.remote}")
        return target.remote
    host, sep, _ = target.dest.partition(":")
    if sep and "/" not in host:
        _run(["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host, "true"],
             what=f"ssh {host}")
    else:
        folder = Path(target.dest)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                pass
        except OSError as err:
            raise DeployError(f"cannot write in {folder}: {err.strerror}") from err
    return target.dest


def privacy_for(target: DeployTarget, environ: dict[str, str] | None = None) -> Privacy:
    if not target.anonymize:
        return Privacy(top_users=target.top_users)
    environ = dict(os.environ) if environ is None else environ
    secret = environ.get(target.secret_env, "")
    if len(secret) < 16:
        raise DeployError(f"target {target.name!r} anonymizes: set ${target.secret_env} to a secret "
                          "of at least 16 characters (keep it: pseudonyms depend on it)")
    return Privacy(key=secret.encode("utf-8"), top_users=target.top_users)


def deploy_pages(target: DeployTarget, site: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="librarian-pages-") as tmp:
        work = Path(tmp) / "site"
        heads = _run(["git", "ls-remote", "--heads", target.remote, target.branch],
                     what=f"reading {target.remote}")
        if heads.strip():
            _run(["git", "clone", "--quiet", "--depth", "1", "--branch", target.branch,
                  target.remote, str(work)], what=f"cloning {target.remote}")
        else:  # first use: an orphan branch
            _run(["git", "init", "--quiet", str(work)])
            _run(["git", "checkout", "--quiet", "--orphan", target.branch], cwd=work)
            _run(["git", "remote", "add", "origin", target.remote], cwd=work)
        copy_tree(site, work)
        (work / ".nojekyll").write_bytes(b"")
        _run(["git", "add", "--all"], cwd=work)
        if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=work,
                          check=False).returncode == 0 and heads.strip():
            return "no change, nothing committed"
        changed = _run(["git", "diff", "--cached", "--name-only"], cwd=work).split()
        stamp = time.strftime("%Y-%m-%d %H:%M %Z")
        # The message names files and a time only: never a user (pages are public).
        _run(["git", "commit", "--quiet", "-m", f"Librarian: update usage ({stamp})",
              "-m", f"{len(changed)} file(s) changed"], cwd=work)
        _run(["git", "push", "--quiet", "origin", f"HEAD:refs/heads/{target.branch}"], cwd=work,
             what=f"pushing to {target.remote} ({target.branch})")
        return f"pushed {len(changed)} changed file(s) to {target.branch}"


def deploy_copy(target: DeployTarget, site: Path) -> str:
    dest = target.dest
    host, sep, _ = dest.partition(":")
    if sep and "/" not in host:  # host:path
        if shutil.which("rsync"):
            _run(["rsync", "-a", "--delete", f"{site}/", dest], what=f"rsync to {dest}")
        else:
            _run(["scp", "-q", "-r", f"{site}/.", dest], what=f"scp to {dest}")
        return f"copied to {dest}"
    copy_tree(site, Path(dest))
    return f"copied to {dest}"


def deploy(config: Config, names: list[str] | None = None) -> list[Outcome]:
    """Export and publish to each target (all configured ones by default)."""
    targets = [t for t in config.deploy if not names or t.name in names]
    unknown = sorted(set(names or []) - {t.name for t in config.deploy})
    outcomes = [Outcome(n, False, "no such target in [[deploy]]") for n in unknown]
    for target in targets:
        try:
            privacy = privacy_for(target)
            with tempfile.TemporaryDirectory(prefix="librarian-export-") as tmp:
                site = Path(tmp)
                export_site(config, site, privacy, keys=target.qos or None)
                publish = deploy_pages if target.kind == "pages" else deploy_copy
                outcomes.append(Outcome(target.name, True, publish(target, site)))
        except (DeployError, OSError) as err:
            outcomes.append(Outcome(target.name, False, str(err)))
    return outcomes
