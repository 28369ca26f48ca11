"""Staff accounts on a real SQLite records database: adding, finding, checking and ending them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from accounts.passwords import WeakPassword
from accounts.roles import Caller, Role
from accounts.users import BadUser, UserBook, UserExists, UserMissing
from api.auth import TokenBook
from records.db import Database, migrate, sqlite_file_url
from records.models import User

PASSWORD = "correct horse battery"


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Database]:
    """The records database of the service, migrated, in this test's folder."""
    database = Database(sqlite_file_url(tmp_path, "records.db"))
    migrate(database.engine)
    yield database
    database.close()


@pytest.fixture
def book(records: Database) -> UserBook:
    return UserBook(records)


def _token_for(records: Database, user: User) -> str:
    """A log-in token of `user`, as a log-in would issue it."""
    token, _row = TokenBook(records, None).issue(user.username, Role(user.role), user_id=user.id)
    return token


def test_an_added_user_is_listed_and_found_with_its_role_and_sites(book: UserBook) -> None:
    added = book.add("zoe", PASSWORD, Role.GUARD, ["s2", "s1", "s2"])
    book.add("alice", PASSWORD, Role.MANAGER)
    assert (added.username, added.role, added.sites, added.disabled_at) == (
        "zoe",
        "guard",
        ["s2", "s1"],
        None,
    )
    assert [(u.username, u.role, u.sites) for u in book.list()] == [
        ("alice", "manager", []),
        ("zoe", "guard", ["s2", "s1"]),
    ]
    found = book.get("zoe")
    assert (found.id, found.role, found.sites) == (added.id, "guard", ["s2", "s1"])
    assert found.created_at == found.password_changed_at
    with pytest.raises(UserMissing):
        book.get("nobody")


def test_the_password_is_kept_only_as_its_argon2_hash(book: UserBook, records: Database) -> None:
    user = book.add("alice", PASSWORD, Role.ENGINEER)
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash
    # Nowhere in the stored row either, in any column.
    with records.engine.connect() as conn:
        [row] = conn.execute(text("SELECT * FROM users")).all()
    assert all(PASSWORD not in str(value) for value in row)
    # The same password twice gives different hashes (a salt of its own).
    assert book.add("bob", PASSWORD, Role.ENGINEER).password_hash != user.password_hash


def test_authenticate_accepts_only_the_right_password_of_an_enabled_user(book: UserBook) -> None:
    added = book.add("alice", PASSWORD, Role.ENGINEER, ["s1"])
    found = book.authenticate("alice", PASSWORD)
    assert found is not None and (found.id, found.username) == (added.id, "alice")
    assert book.authenticate("alice", PASSWORD + "!") is None
    assert book.authenticate("alice", PASSWORD.upper()) is None
    assert book.authenticate("alice", "") is None
    assert book.authenticate("alicia", PASSWORD) is None
    assert book.authenticate("Alice", PASSWORD) is None  # names are lower case; no other spelling
    book.disable("alice")
    assert book.authenticate("alice", PASSWORD) is None, "a disabled user cannot log in"


def test_a_second_user_of_the_same_name_is_refused(book: UserBook) -> None:
    book.add("alice", PASSWORD, Role.ENGINEER, ["s1"])
    with pytest.raises(UserExists):
        book.add("alice", "another password", Role.ADMIN)
    [alice] = book.list()
    assert (alice.role, alice.sites) == ("engineer", ["s1"])
    assert book.authenticate("alice", PASSWORD) is not None
    assert book.authenticate("alice", "another password") is None


@pytest.mark.parametrize("name", ["", "Alice", "-alice", ".alice", "al ice", "al/ice", "é", "a" * 65])
def test_a_bad_user_name_is_refused_naming_the_field(book: UserBook, name: str) -> None:
    with pytest.raises(BadUser) as refused:
        book.add(name, PASSWORD, Role.ENGINEER)
    assert refused.value.field == "username"
    assert book.list() == []


def test_the_longest_and_shortest_names_are_allowed(book: UserBook) -> None:
    for name in ("a" * 64, "0", "a.b_c-d"):
        book.add(name, PASSWORD, Role.GUARD)
    assert len(book.list()) == 3


@pytest.mark.parametrize("site", ["S1", "s 1", "s.1", "", "-s1", "s" * 65])
def test_a_bad_site_is_refused_naming_the_field(book: UserBook, site: str) -> None:
    with pytest.raises(BadUser) as refused:
        book.add("alice", PASSWORD, Role.ENGINEER, ["s1", site])
    assert refused.value.field == "sites"
    assert book.list() == []


@pytest.mark.parametrize("password", ["", "7 chars", "x" * 257])
def test_a_weak_password_is_refused_on_adding_and_on_changing(book: UserBook, password: str) -> None:
    with pytest.raises(WeakPassword):
        book.add("alice", password, Role.ENGINEER)
    assert book.list() == []
    book.add("alice", PASSWORD, Role.ENGINEER)
    with pytest.raises(WeakPassword):
        book.set_password("alice", password)
    assert book.authenticate("alice", PASSWORD) is not None, "the old password still works"


def test_passwords_of_8_and_256_characters_are_allowed(book: UserBook) -> None:
    book.add("short", "8 chars!", Role.GUARD)
    book.add("long", "y" * 256, Role.GUARD)
    assert book.authenticate("short", "8 chars!") is not None
    assert book.authenticate("long", "y" * 256) is not None


def test_disabling_a_user_ends_its_tokens_and_no_one_elses(book: UserBook, records: Database) -> None:
    alice = book.add("alice", PASSWORD, Role.ENGINEER, ["s1", "s2"])
    bob = book.add("bob", PASSWORD, Role.MANAGER)
    token, bobs = _token_for(records, alice), _token_for(records, bob)
    tokens = TokenBook(records, None)
    # A log-in token acts with the user's role and sites.
    assert tokens.caller(token) == Caller("alice", Role.ENGINEER, frozenset({"s1", "s2"}))
    assert tokens.caller(bobs) == Caller("bob", Role.MANAGER, None)

    disabled = book.disable("alice")
    assert disabled.disabled_at is not None
    assert TokenBook(records, None).caller(token) is None, "refused by a book that never saw it"
    tokens.forget()
    assert tokens.caller(token) is None, "refused by the book that remembered it, once it forgets"
    assert tokens.caller(bobs) == Caller("bob", Role.MANAGER, None)
    [row] = [t for t in tokens.tokens() if t.user_id == alice.id]
    assert row.revoked_at is not None

    # Disabling again keeps the first time.
    assert book.disable("alice").disabled_at == disabled.disabled_at
    assert book.get("alice").disabled_at == disabled.disabled_at
    with pytest.raises(UserMissing):
        book.disable("nobody")


def test_a_new_password_ends_the_users_tokens(book: UserBook, records: Database) -> None:
    alice = book.add("alice", PASSWORD, Role.GUARD)
    bob = book.add("bob", PASSWORD, Role.GUARD)
    token, bobs = _token_for(records, alice), _token_for(records, bob)
    tokens = TokenBook(records, None)
    assert tokens.caller(token) is not None

    changed = book.set_password("alice", "a new passphrase")
    assert changed.password_changed_at > alice.password_changed_at
    assert changed.disabled_at is None
    assert TokenBook(records, None).caller(token) is None
    tokens.forget()
    assert tokens.caller(token) is None
    assert tokens.caller(bobs) == Caller("bob", Role.GUARD, None)
    assert book.authenticate("alice", PASSWORD) is None
    assert book.authenticate("alice", "a new passphrase") is not None
    # A token issued after the change works: the user logs in again.
    assert tokens.caller(_token_for(records, changed)) == Caller("alice", Role.GUARD, None)
    with pytest.raises(UserMissing):
        book.set_password("nobody", "a new passphrase")


def test_a_password_longer_than_any_that_can_be_set_is_refused(book: UserBook) -> None:
    from accounts.passwords import MAX_LENGTH

    exact = "p" * MAX_LENGTH
    book.add("long", exact, Role.ENGINEER)
    assert book.authenticate("long", exact) is not None
    assert book.authenticate("long", exact + "anything") is None
