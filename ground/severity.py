"""Fault classes of the contract, ordered routine < major < emergency."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """A fault class; compares by rank, so `max()` gives the most serious."""

    ROUTINE = "routine"
    MAJOR = "major"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """0 for routine, 1 for major, 2 for emergency."""
        return _RANK[self]

    @property
    def response_due_s(self) -> int:
        """How soon someone must respond, in seconds (contract, Classes)."""
        return _RESPONSE_DUE_S[self]

    @property
    def resolve_due_s(self) -> int:
        """The repair target, in seconds: the company's own (the contract sets only the response)."""
        return _RESOLVE_DUE_S[self]

    @property
    def label_zh(self) -> str:
        """The Chinese name of the class: 一般, 重大 or 緊急."""
        return _LABEL_ZH[self]

    # str's ordering is alphabetical; the classes order by rank.
    def __lt__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return _RANK[self] < _RANK[other]
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return _RANK[self] <= _RANK[other]
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return _RANK[self] > _RANK[other]
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return _RANK[self] >= _RANK[other]
        return NotImplemented


_RANK = {Severity.ROUTINE: 0, Severity.MAJOR: 1, Severity.EMERGENCY: 2}
_RESPONSE_DUE_S = {Severity.ROUTINE: 24 * 3600, Severity.MAJOR: 30 * 60, Severity.EMERGENCY: 5 * 60}
_RESOLVE_DUE_S = {Severity.ROUTINE: 72 * 3600, Severity.MAJOR: 24 * 3600, Severity.EMERGENCY: 4 * 3600}
_LABEL_ZH = {Severity.ROUTINE: "一般", Severity.MAJOR: "重大", Severity.EMERGENCY: "緊急"}
