"""Who is told: the chain by class and escalation, sites and `*`, and the recipients file checked whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground.severity import Severity
from tickets.recipients import CATCH_ALL, Duty, Recipient, RecipientBook, duties
from tickets.recipientsfile import RecipientsError, RecipientsFile, check, document, read

FILE = """
version: 1
sites:
  "*":
    duty_engineer:
      - {name: Central engineer, url: "http://hooks.example/central-eng"}
    leadership:
      - {name: Director, url: "http://hooks.example/director", user: chan}
  s1:
    duty_engineer:
      - {name: S1 engineer, url: "http://hooks.example/s1-eng"}
    duty_manager:
      - {name: S1 manager, url: "http://hooks.example/s1-mgr", user: wong}
"""


@pytest.mark.parametrize(
    ("severity", "level", "expected"),
    [
        (Severity.ROUTINE, 0, (Duty.ENGINEER,)),
        (Severity.MAJOR, 0, (Duty.ENGINEER, Duty.MANAGER)),
        (Severity.EMERGENCY, 0, (Duty.ENGINEER, Duty.MANAGER, Duty.LEADERSHIP)),
        (Severity.ROUTINE, 1, (Duty.ENGINEER, Duty.MANAGER)),
        (Severity.MAJOR, 1, (Duty.ENGINEER, Duty.MANAGER, Duty.LEADERSHIP)),
        (Severity.EMERGENCY, 2, (Duty.ENGINEER, Duty.MANAGER, Duty.LEADERSHIP)),
    ],
)
def test_the_chain_by_class_and_escalation_level(
    severity: Severity, level: int, expected: tuple[Duty]
) -> None:
    assert duties(severity, level) == expected


def test_a_site_names_its_own_duties_and_the_rest_come_from_every_site() -> None:
    book = read(FILE, "recipients.yaml")
    names = [a.recipient.name for a in book.addressees("s1", Severity.EMERGENCY)]
    assert names == ["S1 engineer", "S1 manager", "Director"]
    # Another site: only what `*` names.
    assert [a.recipient.name for a in book.addressees("s2", Severity.EMERGENCY)] == [
        "Central engineer",
        "Director",
    ]
    assert [(a.recipient.name, a.role) for a in book.addressees("s1", Severity.ROUTINE)] == [
        ("S1 engineer", "duty_engineer")
    ]


def test_the_catch_all_hears_everything_and_a_url_is_told_once() -> None:
    same = "http://hooks.example/everyone"
    book = RecipientBook(
        {"*": {Duty.ENGINEER: (Recipient("Eng", same),), Duty.MANAGER: (Recipient("Mgr", same),)}}
    )
    told = book.addressees("s9", Severity.MAJOR, catch_all="http://hooks.example/all")
    assert [(a.recipient.name, a.role) for a in told] == [
        ("Eng", "duty_engineer"),
        ("FACILITY_WEBHOOK_URL", CATCH_ALL),
    ]
    assert [a.role for a in RecipientBook().addressees("s1", Severity.ROUTINE, catch_all=same)] == [CATCH_ALL]


def test_a_document_goes_back_and_forth_unchanged() -> None:
    book = read(FILE, "recipients.yaml")
    assert check(document(book), "again") == book


def test_every_problem_of_a_file_is_named_with_its_place() -> None:
    bad = """
version: 2
sites:
  S 1:
    duty_engineer: [{name: X, url: "http://h/x"}]
  s2:
    duty_enginer: []
    leadership:
      - {name: Y, url: "ftp://h/y"}
      - {name: Z, url: "http://h/z", user: "Not A User"}
      - {url: "http://h/w"}
"""
    with pytest.raises(RecipientsError) as caught:
        read(bad, "recipients.yaml")
    assert caught.value.problems == [
        "version: 2: this program reads version 1",
        "sites.S 1: 'S 1' is not a site id or '*'",
        "sites.s2.duty_enginer: unknown key (allowed: duty_engineer, duty_manager, leadership)",
        "sites.s2.leadership[0].url: 'ftp://h/y' is not an http(s):// URL",
        "sites.s2.leadership[1].user: 'Not A User' is not a user name",
        "sites.s2.leadership[2].name: required",
    ]


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(RecipientsError, match="given twice"):
        read("version: 1\nsites: {}\nsites: {}\n", "recipients.yaml")


def test_the_file_is_written_whole_and_read_again_when_edited(tmp_path: Path) -> None:
    path = tmp_path / "recipients.yaml"
    recipients = RecipientsFile(path)
    assert recipients.book() == RecipientBook()
    recipients.replace(
        {"version": 1, "sites": {"s1": {"duty_engineer": [{"name": "A", "url": "http://h/a"}]}}}
    )
    assert RecipientsFile(path).book() == recipients.book()  # what a restart reads
    path.write_text(FILE)
    assert [a.recipient.name for a in recipients.book().addressees("s1", Severity.ROUTINE)] == ["S1 engineer"]
    path.write_text("version: 1\nsites: [\n")  # a bad edit: the last good book stays
    assert [a.recipient.name for a in recipients.book().addressees("s1", Severity.ROUTINE)] == ["S1 engineer"]
    with pytest.raises(RecipientsError):
        RecipientsFile(path)  # at start-up, a bad file stops the service
