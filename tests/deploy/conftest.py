"""Fixtures of the deployment tests: certificates made by deploy/make-ca.sh and the stack's broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.stack import StackMosquitto, start_stack_broker
from tests.servers import make_ca


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a broker certificate for 127.0.0.1, made by deploy/make-ca.sh."""
    return make_ca(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def broker(certs: Path) -> Iterator[StackMosquitto]:
    """The stack's broker, as shipped, on free ports, with accounts made by make-passwords.sh."""
    yield from start_stack_broker(certs)
