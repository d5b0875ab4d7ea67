"""The access-control pieces on small inputs (the real server tests are in test_production.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.security import (
    PasswordFile,
    PasswordFileError,
    content_security_policy,
    in_groups,
    read_password_file,
    script_hash,
    set_password,
)


def test_password_file_round_trip_and_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    set_password(path, "alice", "correct horse")
    pf = PasswordFile(path)
    assert pf.check("alice", "correct horse")
    assert pf.check("alice", "correct horse")  # remembered
    assert not pf.check("alice", "Correct horse")
    assert not pf.check("bob", "correct horse")
    set_password(path, "alice", "another secret")
    assert not pf.check("alice", "correct horse")  # the old password stops working at once
    assert pf.check("alice", "another secret")


@pytest.mark.parametrize(("text", "match"), [
    ("alice\n", "line 1 is not 'user:hash'"),
    ("# comment\n\nbob:\n", "line 3"),
    (":scrypt:1$2$3\n", "line 1"),
])
def test_a_bad_password_file_line_is_named(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "passwords"
    path.write_text(text)
    with pytest.raises(PasswordFileError, match=match):
        read_password_file(path)
    assert not PasswordFile(path).check("alice", "x")  # refuses everyone, never crashes


def test_bad_user_names_and_short_passwords_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PasswordFileError, match="user name"):
        set_password(tmp_path / "p", "a:b", "long enough")
    with pytest.raises(PasswordFileError, match="at least 8"):
        set_password(tmp_path / "p", "alice", "short")


def test_group_membership_includes_the_primary_group() -> None:
    assert in_groups("root", ["root"])
    assert not in_groups("root", ["no-such-group-librarian"])
    assert not in_groups("no-such-user-librarian", ["root"])


def test_csp_allows_only_self_and_the_listed_inline_scripts() -> None:
    h = script_hash("alert(1)")
    policy = content_security_policy([h])
    assert f"script-src 'self' {h}" in policy
    assert "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert h == "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"


def test_the_access_map_gives_each_visitor_their_qos_in_order() -> None:
    import grp

    from app.security import Access
    from collector.config_model import AppConfig

    root_group = grp.getgrgid(0).gr_name     # root's primary group, on any machine
    app = AppConfig(auth="header", access=(("alice", ("b", "a")), ("carol", ("c",)),
                                           (f"@{root_group}", ("*",)),
                                           ("@no-such-group-here", ("a",))))
    access = Access(app, "T")
    keys = ("a", "b", "c")
    assert access.visible("alice", keys) == ("a", "b")     # the site's order, not the map's
    assert access.visible("carol", keys) == ("c",)
    assert access.visible("root", keys) == keys             # by group: all
    assert access.visible("mallory", keys) == ()
    assert Access(AppConfig(auth="header"), "T").visible("mallory", keys) == keys   # no map
