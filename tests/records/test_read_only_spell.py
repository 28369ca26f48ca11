"""After a read-only spell, writes work again within seconds, no stale read-only connections."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs in a process of its own, without the power to ignore file permissions: as root that power
# would write a read-only file anyway. It writes every 20 ms and reports each write; on "burst"
# from the test it opens three read sessions at once, as the API's readers do, so that the pool
# opens connections while the file is read-only.
_CLIENT = """
import contextlib, sys, threading, time
from sqlalchemy import text
from records.db import Database, migrate

db = Database(sys.argv[1])
migrate(db.engine)
with db.session() as s:
    s.execute(text("CREATE TABLE IF NOT EXISTS probe (n INTEGER)"))
end = time.monotonic() + float(sys.argv[2])

def bursts():
    for line in sys.stdin:
        with contextlib.ExitStack() as stack:
            for _ in range(3):
                stack.enter_context(db.read()).execute(text("SELECT count(*) FROM probe")).scalar()
        print("burst", time.monotonic(), flush=True)

threading.Thread(target=bursts, daemon=True).start()
n = 0
while time.monotonic() < end:
    n += 1
    try:
        with db.session() as s:
            s.execute(text("INSERT INTO probe VALUES (:n)"), {"n": n})
        print("ok", time.monotonic(), flush=True)
    except Exception as exc:
        print("fail", time.monotonic(), type(exc).__name__, flush=True)
    time.sleep(0.02)
"""


def _without_override() -> list[str]:
    """The command prefix that runs a process without root's power over file permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE as root"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_writes_recover_within_seconds_once_the_file_is_writable_again() -> None:
    folder = Path(tempfile.mkdtemp(prefix="read-only-spell-"))
    try:
        db_file = folder / "records.db"
        client = subprocess.Popen(
            [*_without_override(), sys.executable, "-c", _CLIENT, f"sqlite:///{db_file}", "9"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert client.stdout is not None and client.stdin is not None
        assert client.stdout.readline().startswith("ok"), "the client could not write at all"
        time.sleep(0.5)
        db_file.chmod(0o444)
        client.stdin.write("burst\n")
        client.stdin.flush()
        time.sleep(2.0)
        db_file.chmod(0o644)
        restored = time.monotonic()
        out, _ = client.communicate("", timeout=30)
        assert client.returncode == 0
        results = [(line.split()[0], float(line.split()[1])) for line in out.splitlines()]
        assert "burst" in {kind for kind, _ in results}
        during = [kind for kind, at in results if at < restored]
        after = [kind for kind, at in results if at >= restored + 3.0]
        assert "fail" in during, "the spell did not refuse writes: the test would prove nothing"
        failing = after.count("fail")
        assert after and not failing, f"{failing} writes failed more than 3 s after the spell"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
