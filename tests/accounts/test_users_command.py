"""`facility users`, run as the command it is, on a data folder of the test's own."""

from __future__ import annotations

import os
import re
import select
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts.users import UserBook
from records.db import Database, sqlite_file_url

PASSWORD = "correct horse battery"

# Makes the pty on stdin the controlling terminal of a new session, as a login shell has, then
# runs the command: getpass reads from the controlling terminal.
_ON_A_TERMINAL = """
import fcntl, os, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
os.execv(sys.executable, [sys.executable, "-m", "facility", *sys.argv[1:]])
"""


def _env(tmp_path: Path, password: str | None) -> dict[str, str]:
    """The environment without the caller's FACILITY_ settings, with this test's data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACILITY_")}
    env["FACILITY_DATA_DIR"] = str(tmp_path / "data")
    if password is not None:
        env["FACILITY_NEW_PASSWORD"] = password
    return env


def facility(
    tmp_path: Path, *args: str, password: str | None = PASSWORD, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `facility users ARGS`; without a password in the environment it is read from stdin."""
    return subprocess.run(
        [sys.executable, "-m", "facility", "users", *args],
        env=_env(tmp_path, password),
        cwd=tmp_path,  # no .env of the checkout's
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        # No controlling terminal, so getpass reads stdin rather than the terminal of the test run.
        start_new_session=True,
        umask=0o022,  # the usual one: only the command itself can make its files private
    )


def listed(tmp_path: Path) -> list[list[str]]:
    """`facility users list`, as rows of fields."""
    done = facility(tmp_path, "list")
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


@pytest.fixture
def book(tmp_path: Path) -> Iterator[UserBook]:
    """The accounts in the data folder's records.db, as the service reads them."""
    database = Database(sqlite_file_url(tmp_path / "data", "records.db"))
    yield UserBook(database)
    database.close()


def test_add_and_list_with_roles_and_sites(tmp_path: Path) -> None:
    added = facility(tmp_path, "add", "alice", "--role", "engineer", "--site", "s1", "--site", "s2")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added alice (engineer; sites: s1,s2)"
    assert PASSWORD not in added.stdout + added.stderr
    assert facility(tmp_path, "add", "bob", "--role", "front_desk").returncode == 0
    assert listed(tmp_path) == [
        ["alice", "engineer", "s1,s2", "active"],
        ["bob", "front_desk", "*", "active"],
    ]
    # The records hold password hashes: for the service's user only, whatever the caller's umask.
    data = tmp_path / "data"
    for path in (data, *data.iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_an_added_user_logs_in_with_its_password(tmp_path: Path, book: UserBook) -> None:
    assert facility(tmp_path, "add", "alice", "--role", "guard", "--site", "s1").returncode == 0
    user = book.authenticate("alice", PASSWORD)
    assert user is not None and (user.role, user.sites) == ("guard", ["s1"])
    assert book.authenticate("alice", "wrong password") is None


def test_what_cannot_be_done_exits_1_with_a_message(tmp_path: Path) -> None:
    assert facility(tmp_path, "add", "alice", "--role", "engineer", "--site", "s1").returncode == 0
    refusals = [
        (("add", "alice", "--role", "admin"), PASSWORD, "user alice exists"),
        (("add", "carol", "--role", "guard"), "short", "at least 8"),
        (("add", "Carol", "--role", "guard"), PASSWORD, "user name"),
        (("add", "carol", "--role", "guard", "--site", "S 1"), PASSWORD, "not a site id"),
        (("disable", "nobody"), PASSWORD, "no user nobody"),
        (("passwd", "nobody"), PASSWORD, "no user nobody"),
    ]
    for args, password, message in refusals:
        done = facility(tmp_path, *args, password=password)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("facility users: ") and message in done.stderr, (args, done.stderr)
        assert done.stdout == ""
    assert listed(tmp_path) == [["alice", "engineer", "s1", "active"]], "nothing changed"
    unknown_role = facility(tmp_path, "add", "carol", "--role", "root")
    assert unknown_role.returncode == 2 and "invalid choice" in unknown_role.stderr


def test_disable_shows_in_the_list_and_stops_log_ins(tmp_path: Path, book: UserBook) -> None:
    for name in ("alice", "bob"):
        assert facility(tmp_path, "add", name, "--role", "guard").returncode == 0
    before = time.gmtime()
    done = facility(tmp_path, "disable", "alice")
    assert done.returncode == 0, done.stderr
    assert "disabled alice" in done.stdout
    [alice, bob] = listed(tmp_path)
    assert alice[:3] == ["alice", "guard", "*"] and bob == ["bob", "guard", "*", "active"]
    when = re.fullmatch(r"disabled (\d{4}-\d\d-\d\d \d\d:\d\d)Z", alice[3])
    assert when is not None, alice
    assert when[1] >= time.strftime("%Y-%m-%d %H:%M", before)
    assert book.authenticate("alice", PASSWORD) is None
    assert book.authenticate("bob", PASSWORD) is not None


def test_passwd_sets_a_new_password(tmp_path: Path, book: UserBook) -> None:
    assert facility(tmp_path, "add", "alice", "--role", "manager").returncode == 0
    short = facility(tmp_path, "passwd", "alice", password="short")
    assert short.returncode == 1 and "at least 8" in short.stderr
    assert book.authenticate("alice", PASSWORD) is not None, "a refused password changes nothing"
    done = facility(tmp_path, "passwd", "alice", password="a brand new passphrase")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "password of alice set"
    assert book.authenticate("alice", PASSWORD) is None
    assert book.authenticate("alice", "a brand new passphrase") is not None


def test_without_the_variable_the_password_is_asked_twice(tmp_path: Path, book: UserBook) -> None:
    done = facility(
        tmp_path, "add", "alice", "--role", "guard", password=None, stdin=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert done.returncode == 0, done.stderr
    assert "New password: " in done.stderr and "Again: " in done.stderr
    assert book.authenticate("alice", PASSWORD) is not None

    done = facility(tmp_path, "passwd", "alice", password=None, stdin="new passphrase 1\nnew passphrase 2\n")
    assert done.returncode == 1 and "the two passwords differ" in done.stderr
    assert book.authenticate("alice", PASSWORD) is not None, "two different entries change nothing"

    done = facility(
        tmp_path, "add", "bob", "--role", "guard", password=None, stdin="bob's pass 1\nbobs pass 1\n"
    )
    assert done.returncode == 1 and "the two passwords differ" in done.stderr
    done = facility(tmp_path, "add", "bob", "--role", "guard", password=None, stdin="")
    assert done.returncode == 1 and "no password given" in done.stderr
    assert [row[0] for row in listed(tmp_path)] == ["alice"]

    done = facility(tmp_path, "passwd", "alice", password=None, stdin="new passphrase 1\nnew passphrase 1\n")
    assert done.returncode == 0, done.stderr
    assert book.authenticate("alice", "new passphrase 1") is not None


def _read_until(fd: int, marker: bytes | None, seen: bytearray, timeout_s: float = 30.0) -> None:
    """Read the terminal's output into `seen` until it holds `marker`, or with None until the command ends."""
    deadline = time.monotonic() + timeout_s
    while marker is None or marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"no {marker!r} on the terminal; it showed {bytes(seen)!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the command has ended and closed the terminal
            chunk = b""
        if not chunk:
            return
        seen += chunk


def test_a_password_typed_at_a_terminal_is_not_echoed(tmp_path: Path, book: UserBook) -> None:
    main, terminal = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _ON_A_TERMINAL, "users", "add", "alice", "--role", "guard"],
            env=_env(tmp_path, None),
            cwd=tmp_path,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
        )
        os.close(terminal)
        seen = bytearray()
        # Typed only once asked: getpass discards what was typed before it turned echo off.
        _read_until(main, b"New password: ", seen)
        os.write(main, PASSWORD.encode() + b"\n")
        _read_until(main, b"Again: ", seen)
        os.write(main, PASSWORD.encode() + b"\n")
        _read_until(main, None, seen)
        assert proc.wait(30) == 0, bytes(seen)
    finally:
        os.close(main)
    shown = bytes(seen).decode()
    assert "added alice" in shown
    assert PASSWORD not in shown and "Warning" not in shown
    assert book.authenticate("alice", PASSWORD) is not None
