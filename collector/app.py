"""The collector: the single ingress from MQTT, acknowledging each message once it is durably buffered."""

from __future__ import annotations

import collections
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.inbox import DeadLetter, Inbox, truncated
from collector.lineprotocol import format_message
from collector.mqttclient import Publish, ReadAheadClient
from collector.sequence import Verdict
from collector.stores import TimeSeriesStore
from collector.stores.factory import open_store
from collector.subscriptions import SubscriptionMemory
from collector.writer import Writer
from ground.clock import now_ms
from ground.contract import (
    ContractError,
    Message,
    decode,
    decode_gateway_status,
    is_alarm_topic,
    is_gateway_status_topic,
    subscriptions,
)
from ground.datalock import DataDirLock
from ground.settings import Settings

log = logging.getLogger(__name__)

# Received messages waiting for the durable append; when full, paho's network thread waits,
# so memory stays bounded and the broker holds the rest. Two batches: enough to keep the loop busy
# (a read brings a few hundred), while each message waiting costs about 450 bytes, and a batch in
# hand, decoded, about a kilobyte a message.
QUEUE_MAX = 2_000
BATCH_MAX = 1_000
# After an idle spell, wait up to this long for more messages so one commit covers several, as
# long as some arrive within each slice. A slice spans a publisher's pacing (gateways and load
# generators send in bursts a few milliseconds apart).
GATHER_S = 0.02
GATHER_SLICE_S = 0.006
STATS_EVERY_S = 60.0
CHECKPOINT_EVERY_S = 2.0
PRUNE_EVERY_S = 600.0
# The last dead letter of each topic, remembered so that a retained message the broker hands again
# on every subscribe, the same message and not a new one, is set aside once.
LAST_DEAD_MAX = 10_000

MessageHandler = Callable[[Sequence[Message]], None]


# A message as it came off the wire: (topic, payload, mid, qos, received_ms, retain). A plain tuple,
# built once per message on the network thread and unpacked once in the decoding loop.
Received = Publish


class Decoded(NamedTuple):
    """A batch decoded: lines to buffer, dead letters, and the messages accepted for the handlers.

    `untimed`: indexes of the lines whose ts is the receive time, for the buffer's seq replay.
    """

    lines: list[str]
    untimed: list[int]
    dead: list[DeadLetter]
    accepted: list[Message]


class Collector:
    """Subscribes with QoS 1 on a persistent session and hands each valid message to the writer.

    paho's callback only queues the message. The main loop takes what is queued, decodes each
    message once, commits lines, dead letters and seq state to the buffer in one transaction,
    and only then acknowledges the messages to the broker and passes them to `handlers`.
    """

    def __init__(
        self,
        settings: Settings,
        store: TimeSeriesStore,
        handlers: Sequence[MessageHandler] = (),
        *,
        lock_data_dir: bool = True,
    ) -> None:
        self.settings = settings
        # `facility serve` holds the folder's lock itself, from before it opens anything there.
        self._data_lock = DataDirLock(settings.data_dir) if lock_data_dir else None
        try:
            self.inbox = Inbox(settings.inbox_path, settings.buffer_sync)
        except Exception:
            self._release_data_dir()
            raise
        self.tracker = self.inbox.load_tracker()
        self.writer = Writer(settings.inbox_path, store, settings.batch_size, settings.flush_interval_s)
        self.handlers = list(handlers)
        self.received = 0
        self.accepted = 0
        self._dead_letters = 0
        latest = self.inbox.latest_dead_letters_by_topic(LAST_DEAD_MAX)
        self._last_dead: dict[str, str] = dict(reversed(latest))
        # Every site's topics, or only this worker's sites (FACILITY_SITES).
        self._filters = subscriptions(settings.sites)
        self._subscriptions: tuple[str, ...] = self._filters.wide
        self._memory = SubscriptionMemory(settings.data_dir / "subscriptions.json")
        # Whatever an earlier run's session may hold, remembered before anything new is subscribed.
        self._held = self._memory.held() | set(self._filters.wide) | set(self._filters.devices)
        self._memory.remember(self._held)
        self.connected = threading.Event()
        self._checkpointed_at = time.monotonic()
        self._lines_since_checkpoint = False
        self._tidied_through = 0
        self._stopping = False
        # A deque and an event rather than queue.Queue: no lock round trip per message.
        self._received: collections.deque[Received] = collections.deque()
        self._derived: collections.deque[str] = collections.deque()
        self._set_aside: collections.deque[DeadLetter] = collections.deque()
        self._waiting = False
        self._arrived = threading.Event()
        self._room = threading.Event()
        self._last_batch = 0
        self._client = self._make_client()

    def _make_client(self) -> ReadAheadClient:
        endpoint = self.settings.mqtt
        client = ReadAheadClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.mqtt_client_id,
            clean_session=False,  # the broker keeps our subscriptions and queues while we are away
            protocol=mqtt.MQTTv311,  # paho's v3.1.1 receive path is markedly faster than v5's
            manual_ack=True,
        )
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        endpoint.secure(client)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_publishes = self._on_publishes
        return client

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        # Subscribing here makes every reconnect resubscribe.
        client.subscribe([(topic, 1) for topic in self._subscriptions])
        log.info("connected to %r (session present: %s)", self.settings.mqtt, flags.session_present)

    def _on_subscribe(self, client: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed and self._subscriptions == self._filters.wide:
            log.warning(
                "broker refused %s (%s): subscribing to the device topics only; messages on other"
                " topics under facility/ will not be seen or counted",
                ", ".join(self._filters.wide),
                failed,
            )
            self._subscriptions = self._filters.devices
            client.subscribe([(topic, 1) for topic in self._subscriptions])
        elif failed:
            log.error("broker refused a subscription: %s", failed)
        else:
            # The session persists: a subscription of an earlier run (the other set, or sites this
            # worker no longer serves) would deliver each message twice or to two workers.
            others = sorted(self._held - set(self._subscriptions))
            if others:
                client.unsubscribe(others)
            log.info("subscribed to %s", ", ".join(self._subscriptions))
            self.connected.set()

    def _on_unsubscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _reasons: Any, _p: Any) -> None:
        # The broker holds only the current filters now; a later run need not unsubscribe the rest.
        try:
            self._memory.remember(self._subscriptions)
            self._held = frozenset(self._subscriptions)
        except OSError:
            log.warning(
                "could not remember the subscriptions; the next start unsubscribes again", exc_info=True
            )

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        if reason != 0:
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_publishes(self, messages: list[Received]) -> None:
        received = self._received
        received.extend(messages)
        if self._waiting:
            self._arrived.set()
        if len(received) > QUEUE_MAX:
            # Woken when the loop has taken a batch, rather than polling: a poll every millisecond
            # takes the interpreter from the loop that would make the room.
            self._room.clear()
            while len(received) > QUEUE_MAX and not self._stopping:
                self._room.wait(0.1)

    def add_lines(self, lines: Sequence[tuple[str, int]]) -> None:
        """Queue points the service derived (alarms, ticket changes, status) for the store.

        Any thread may call it. The collector's loop commits them to the durable buffer, the one
        connection that writes it, and the writer stores them with the readings. `lines` are
        (line protocol, time in ms) pairs.
        """
        self._derived.extend(line for line, _ts in lines)
        if self._waiting:
            self._arrived.set()

    @property
    def dead_letters(self) -> int:
        """Messages and points set aside since the start, at every stage (decode, buffer, store, alarm)."""
        return self._dead_letters + self.writer.rejected

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Queue what the service set aside (an alarm the records refused) for the dead letters.

        Any thread may call it; the collector's loop commits them with its next transaction.
        """
        self._set_aside.extend(letters)
        if self._waiting:
            self._arrived.set()

    def _commit_derived(self) -> None:
        derived, set_aside = self._derived, self._set_aside
        lines = [derived.popleft() for _ in range(len(derived))]
        dead = [set_aside.popleft() for _ in range(len(set_aside))]
        try:
            batch = self.inbox.append(lines, dead, derived=True, stored_through=self.writer.stored_through)
        except Exception:
            log.exception("could not buffer %d derived point(s); trying again", len(lines) + len(dead))
            derived.extendleft(reversed(lines))
            set_aside.extendleft(reversed(dead))
            time.sleep(0.5)
            return
        self._dead_letters += len(dead)
        if batch is not None:
            self.writer.hand(batch, lines)

    def run(self, stop: threading.Event) -> None:
        """Collect until `stop` is set; then disconnect, leaving anything unacknowledged to the broker."""
        self.writer.start()
        endpoint = self.settings.mqtt
        self._client.connect_async(endpoint.host, endpoint.port, keepalive=30)
        self._client.loop_start()
        next_stats = time.monotonic() + STATS_EVERY_S
        next_prune = time.monotonic()
        try:
            while not stop.is_set():
                batch = self._next_batch()
                if batch:
                    self.handle(batch)
                else:
                    self._tidy()
                if self._derived or self._set_aside:
                    self._commit_derived()
                if time.monotonic() >= next_stats:
                    next_stats += STATS_EVERY_S
                    self.log_stats()
                if time.monotonic() >= next_prune:
                    next_prune += PRUNE_EVERY_S
                    self._prune_dead_letters()
        finally:
            self._stopping = True
            self._room.set()
            self._client.disconnect()
            self._client.loop_stop()
            self._client.close()
            if self._derived or self._set_aside:
                self._commit_derived()
            self.writer.stop()
            self._tidy(force=True)
            self.log_stats()
            self.inbox.close()
            self._release_data_dir()

    def _release_data_dir(self) -> None:
        if self._data_lock is not None:
            self._data_lock.release()

    def _prune_dead_letters(self) -> None:
        """Drop dead letters older than FACILITY_DEAD_LETTER_DAYS."""
        before = now_ms() - self.settings.dead_letter_days * 86_400_000
        try:
            pruned = self.inbox.prune_dead_letters(before)
        except Exception:
            log.exception("could not prune old dead letters; trying again later")
            return
        if pruned:
            log.info("pruned %d dead letter(s) older than %d days", pruned, self.settings.dead_letter_days)

    def _next_batch(self) -> list[Received]:
        received = self._received
        if not received:
            self._waiting = True
            if not received:  # checked again: a message may have come before _waiting was seen
                self._arrived.wait(0.2)
            self._waiting = False
            self._arrived.clear()
            if not received:
                return []
            if self._last_batch < BATCH_MAX // 2:
                # After a large batch the loop is catching up: the broker's next messages come as
                # soon as it hears our acknowledgements, so waiting would only stall it.
                self._gather(received)
        popleft = received.popleft
        batch = [popleft() for _ in range(min(len(received), BATCH_MAX))]
        self._last_batch = len(batch)
        if len(received) <= QUEUE_MAX and not self._room.is_set():
            self._room.set()
        return batch

    @staticmethod
    def _gather(received: collections.deque[Received]) -> None:
        """Wait up to GATHER_S for more messages, while they keep coming.

        At a steady rate a batch grows for the whole spell. When nothing more comes within a
        slice, the broker is most likely waiting for our acknowledgements (its window of messages
        in flight is full): waiting longer would only stall it.
        """
        until = time.monotonic() + GATHER_S
        while len(received) < BATCH_MAX and time.monotonic() < until:
            before = len(received)
            time.sleep(GATHER_SLICE_S)
            if len(received) == before:
                return

    def handle(self, batch: Sequence[Received]) -> None:
        """Decode a batch of received messages, hand it on, buffer it durably, then acknowledge it.

        The handlers (rules, tickets) run before the commit so that a fault does not wait on the
        disk's flush; the broker still hears of a message only once it is durable. A crash in
        between leaves the batch unacknowledged, so the broker sends it again and the handlers
        see it twice, which alarms and tickets absorb (one active alarm per device and rule).
        """
        decoded = self._decode(batch)
        for handler in self.handlers:
            try:
                handler(decoded.accepted)
            except Exception:
                log.exception("message handler %r failed", handler)
        _lines, _untimed, dead, accepted = self._buffer(batch, decoded)
        self._remember_dead(dead)
        self._client.ack_many([item[2] for item in batch if item[3]])
        # The service's own alarm topics come back under facility/#: they are no device's messages.
        own = sum(1 for item in batch if "/alarms/" in item[0] and is_alarm_topic(item[0]))
        self.received += len(batch) - own
        self.accepted += len(accepted)
        self._dead_letters += len(dead)

    def _buffer(self, batch: Sequence[Received], decoded: Decoded) -> Decoded:
        """Commit a decoded batch to the buffer; returns what was committed. Retries until it is durable.

        If the batch cannot be committed, each message is tried alone, and one that still fails
        is dead-lettered with the reason, so no single message can stop the collector; when not
        even a dead letter can be written (disk full), it waits and tries again.
        """
        while True:
            try:
                return self._append(decoded)
            except Exception:
                log.exception("could not write the durable buffer; trying the batch message by message")
            # Nothing was committed; start again from the committed seq state.
            self.tracker = self.inbox.load_tracker()
            try:
                return self._commit_one_by_one(batch)
            except Exception:
                log.exception("could not write the durable buffer at all; retrying in 1 s")
                self.tracker = self.inbox.load_tracker()
                time.sleep(1.0)
            decoded = self._decode(batch)

    def _append(self, decoded: Decoded) -> Decoded:
        """Commit one decoded batch, then hand its lines to the writer."""
        lines = decoded.lines
        checkpoint = self._checkpoint_due(bool(lines))
        batch = self.inbox.append(
            lines,
            decoded.dead,
            untimed=decoded.untimed,
            stored_through=self.writer.stored_through,
            checkpoint=self.tracker.take_dirty() if checkpoint else None,
        )
        if checkpoint:
            self._checkpointed_at = time.monotonic()
            self._lines_since_checkpoint = False
        if batch is not None:
            self.writer.hand(batch, lines)
        return decoded

    def _commit_one_by_one(self, batch: Sequence[Received]) -> Decoded:
        lines: list[str] = []
        dead: list[DeadLetter] = []
        accepted: list[Message] = []
        for item in batch:
            try:
                one = self._append(self._decode([item]))
            except Exception as exc:
                self.tracker = self.inbox.load_tracker()
                topic, payload, _mid, _qos, received, _retain = item
                reason = f"could not buffer: {exc!r}"[:500]
                letter = DeadLetter(received, "buffer", topic, reason, truncated(payload))
                self.inbox.append((), [letter])
                dead.append(letter)
                continue
            lines += one.lines
            dead += one.dead
            accepted += one.accepted
        return Decoded(lines, [], dead, accepted)

    def _checkpoint_due(self, new_lines: bool) -> bool:
        self._lines_since_checkpoint |= new_lines
        return self._lines_since_checkpoint and (
            time.monotonic() - self._checkpointed_at >= CHECKPOINT_EVERY_S
        )

    def _tidy(self, force: bool = False) -> None:
        """While no messages come: checkpoint seq state when due and drop lines already stored."""
        checkpoint = self._checkpoint_due(False) or (force and self._lines_since_checkpoint)
        if checkpoint or self.writer.stored_through > self._tidied_through:
            self.inbox.append(
                (),
                stored_through=self.writer.stored_through,
                checkpoint=self.tracker.take_dirty() if checkpoint else None,
            )
            self._tidied_through = self.writer.stored_through
            if checkpoint:
                self._checkpointed_at = time.monotonic()
                self._lines_since_checkpoint = False

    def _decode(self, batch: Sequence[Received]) -> Decoded:
        lines: list[str] = []
        untimed: list[int] = []
        dead: list[DeadLetter] = []
        accepted: list[Message] = []
        observe = self.tracker.observe
        # Dead letters of this decoding, beside those committed before: a batch decoded again after
        # a failed commit must not take its own first decoding for a commit.
        dead_now: dict[str, str] = {}
        skew_ms = self.settings.clock_skew_s * 1000
        for topic, payload, _mid, _qos, received, retained in batch:  # unpacked once: the hot loop
            try:
                m = decode(topic, payload, received, skew_ms)
                duplicate = m.seq is not None and (
                    observe((m.site, m.device_id), m.seq, m.ts, m.ts_given) is Verdict.DUPLICATE
                )
                if duplicate:
                    continue
                if not (retained and not m.ts_given):
                    # A retained status without its own time is one the broker replays on every
                    # subscribe; it is not a new reading. The rules still see it.
                    if not m.ts_given:
                        untimed.append(len(lines))
                    lines.append(format_message(m))
                accepted.append(m)
            except ContractError as exc:
                if is_alarm_topic(topic):
                    continue  # the service's own retained alarms: no device's message, nothing wrong
                reason = exc.reason
                if is_gateway_status_topic(topic):
                    # A gateway's own status: not stored, but tickets hear of its outage.
                    try:
                        accepted.append(decode_gateway_status(topic, payload, received, skew_ms))
                        continue
                    except ContractError as bad:
                        reason = bad.reason
                kept = truncated(payload)
                seen = kept in (self._last_dead.get(topic), dead_now.get(topic))
                dead_now[topic] = kept
                if seen and retained:
                    continue  # replayed on a subscribe: the same message, set aside already
                dead.append(DeadLetter(received, "decode", topic, reason, kept))
            except Exception as exc:  # a bug must not stop the loop; keep the message
                log.exception("unexpected error on a message from %s", topic)
                reason = f"internal error: {exc!r}"[:500]
                dead.append(DeadLetter(received, "decode", topic, reason, truncated(payload)))
        return Decoded(lines, untimed, dead, accepted)

    def _remember_dead(self, dead: Sequence[DeadLetter]) -> None:
        """Remember the last committed dead letter of each topic it names (decoding's only)."""
        last = self._last_dead
        for letter in dead:
            if letter.stage == "decode":
                last.pop(letter.topic, None)
                last[letter.topic] = letter.payload
        while len(last) > LAST_DEAD_MAX:
            del last[next(iter(last))]

    def log_stats(self) -> None:
        """One line of counts, for the log."""
        log.info(
            "received %d, accepted %d, dead letters %d, duplicates %d, lost %d, stored %d,"
            " pending %d, store %s",
            self.received,
            self.accepted,
            self.dead_letters,
            self.tracker.duplicates,
            self.tracker.lost,
            self.writer.stored,
            self.inbox.pending_count(),
            "up" if self.writer.store_up else "DOWN",
        )


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, for a clean stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run(settings: Settings) -> None:
    """`facility collector`: collect until SIGINT or SIGTERM."""
    store = open_store(settings)
    stop = stop_on_signals()
    collector = Collector(settings, store)
    log.info(
        "collector: %r → %s, buffer %s",
        settings.mqtt,
        describe_store(settings),
        settings.inbox_path,
    )
    try:
        collector.run(stop)
    finally:
        store.close()


def describe_store(settings: Settings) -> str:
    """Where readings go, in words."""
    if settings.influx_url is None:
        return f"embedded SQLite store {settings.embedded_store_path}"
    return f"InfluxDB {settings.influx_url} ({settings.influx_api} API)"
