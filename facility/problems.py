"""An error that lists every problem found in a file, so one run names them all."""

from __future__ import annotations


class ProblemsError(ValueError):
    """A file that cannot be used; `problems` lists every fault found, each naming its place."""

    def __init__(self, problems: list[str], source: str) -> None:
        self.problems = problems
        self.source = source
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{source}: {count}:\n" + "\n".join(f"  - {p}" for p in problems))
