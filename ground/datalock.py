"""One process per data folder: a lock that a second `facility serve` or `collector` is refused by."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"


class DataDirInUse(RuntimeError):
    """Another process (or another service in this one) works on the same data folder."""


class DataDirLock:
    """An exclusive lock on a data folder, held until `release()` or the process ends.

    Two processes on one folder would both acknowledge messages from one durable buffer, write one
    seq state and take over each other's MQTT session; the second is refused instead. The kernel
    drops the lock when its holder dies, so a killed process leaves nothing to clean up.
    """

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / LOCK_FILE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(
                f"the data folder {data_dir.resolve()} is in use by another facility process (pid {holder});"
                " stop it first, or give this one a folder of its own (FACILITY_DATA_DIR)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Let another process have the folder."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the lock
            self._fd = None
