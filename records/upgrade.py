"""`python -m records.upgrade`: migrate the records whose URL is on stdin to the newest revision.

`records.db.migrate_apart` runs it, so that a service does not keep what the migrations took.
"""

from __future__ import annotations

import sys

from records.db import make_engine, migrate


def main() -> int:
    """Migrate, and exit 0 once the records are at the head."""
    engine = make_engine(sys.stdin.read().strip())
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
