"""Notifications survive a restart: a receiver that fails for a while gets every one exactly once.

The whole service (`facility serve` without HTTP) on a test mosquitto; the receiver is a real HTTP
server on loopback. The first service runs while the receiver refuses everything and is stopped
with every notification pending; a second service on the same data folder and records delivers
them once the receiver, after a few more refusals, accepts.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from facility.service import Service
from ground.severity import Severity
from records.models import Notification
from records.states import Delivery
from tests.conftest import ADMIN_TOKEN, make_settings, wait_until
from tests.servers import Mosquitto
from tests.webhook_receiver import Receiver, receiving
from tickets.service import NewTicket

pytestmark = pytest.mark.services


def _recipients_file(path: Path, receiver: Receiver) -> Path:
    doc = {
        "version": 1,
        "sites": {
            "s1": {
                "duty_engineer": [{"name": "Engineer", "url": receiver.url("eng")}],
                "duty_manager": [{"name": "Manager", "url": receiver.url("mgr")}],
            },
            "*": {"leadership": [{"name": "Director", "url": receiver.url("dir")}]},
        },
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _service(tmp_path: Path, mosquitto: Mosquitto, receiver: Receiver) -> Service:
    settings = make_settings(
        tmp_path,
        mqtt_url=mosquitto.url,
        admin_token=ADMIN_TOKEN,
        webhook_url=receiver.url("all"),
        recipients_file=_recipients_file(tmp_path / "recipients.yaml", receiver),
        outbox_backoff_s=0.05,
        outbox_backoff_max_s=0.2,
    )
    service = Service(settings)
    service.start()
    return service


def test_every_notification_arrives_once_across_a_restart(tmp_path: Path, mosquitto: Mosquitto) -> None:
    with receiving(fail_first=10**9) as receiver:  # down while the first service runs
        first = _service(tmp_path, mosquitto, receiver)
        try:
            for severity in Severity:
                first.tickets.open_ticket(
                    NewTicket(site="s1", title=f"{severity} leak", severity=severity), "desk"
                )
            # Routine: engineer and the catch-all; major: + manager; emergency: + leadership.
            wait_until(lambda: len(receiver.posts) >= 9, what="every notification tried and refused")
        finally:
            first.stop()
        with first.db.read() as s:
            pending = s.scalars(select(Notification).where(Notification.state == Delivery.PENDING)).all()
        assert len(pending) == 9
        assert first.courier.attempts_failed >= 9 and first.courier.sent == 0

        receiver.fail_first = len(receiver.posts) + 3  # three more refusals, then it accepts
        second = _service(tmp_path, mosquitto, receiver)
        try:
            wait_until(
                lambda: second.outbox.counts()[Delivery.DELIVERED] == 9, what="every notification delivered"
            )
            rows = second.outbox.list()
        finally:
            second.stop()
        accepted = Counter(receiver.keys())
        assert set(accepted) == {row.idempotency_key for row in rows}
        assert set(accepted.values()) == {1}, "a notification arrived twice"
        by_path = Counter(path for path, _, _ in receiver.accepted)
        assert by_path == {"/all": 3, "/eng": 3, "/mgr": 2, "/dir": 1}
        assert all(row.attempts >= 2 for row in rows)  # each was refused before the restart
