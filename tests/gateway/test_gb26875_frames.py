"""GB/T 26875.3 frames and data units: golden raw frames read to their fields and written back exactly."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.gb26875.frames import (
    Command,
    Frame,
    FrameError,
    Splitter,
    TimeLabel,
    address_number,
    confirm,
    decode,
    deny,
    encode,
)
from gateway.gb26875.units import (
    ComponentFlag,
    ComponentStatus,
    DataUnit,
    SystemFlag,
    SystemStatus,
    UnitError,
    decode_text,
    decode_unit,
    encode_text,
    units,
)

GOLDEN = Path(__file__).parent / "golden"
AT = TimeLabel(5, 30, 14, 18, 5, 24)  # 2024-05-18 14:30:05


def golden(name: str) -> bytes:
    """A golden frame: hex bytes, one field per line, '#' lines are comments."""
    lines = (GOLDEN / f"gb26875_{name}.hex").read_text().splitlines()
    return bytes.fromhex(" ".join(line for line in lines if not line.startswith("#")))


def test_the_fire_alarm_frame_reads_to_its_fields_and_writes_back_byte_for_byte() -> None:
    raw = golden("fire_alarm")
    frame = decode(raw)
    assert (frame.serial, frame.version, frame.command) == (1, (1, 0), Command.SEND)
    assert (frame.source, frame.destination, frame.time) == (1, 100, AT)
    assert frame.source == address_number("0000000001")
    unit = decode_unit(frame.data)
    assert unit == DataUnit(
        2,
        1,
        (ComponentStatus(1, 1, 42, 0x0001_0017, 0x0003, "3F 電梯廳 感煙探測器", AT),),
    )
    component = unit.objects[0]
    assert isinstance(component, ComponentStatus)
    assert (component.loop, component.point, component.label) == (1, 23, "L01-A023")
    assert ComponentFlag(component.status) == ComponentFlag.NORMAL | ComponentFlag.FIRE_ALARM
    assert encode(frame) == raw
    assert unit.encode() == frame.data
    built = Frame(
        1, Command.SEND, 1, 100, AT, units(ComponentStatus.at(1, 23, 3, "3F 電梯廳 感煙探測器", AT)).encode()
    )
    assert encode(built) == raw


def test_the_confirmation_answers_with_the_serial_and_the_addresses_swapped() -> None:
    frame = decode(golden("fire_alarm"))
    answer = confirm(frame, TimeLabel(7, 30, 14, 18, 5, 24))
    assert encode(answer) == golden("fire_alarm_confirm")
    assert decode(golden("fire_alarm_confirm")) == answer
    assert (answer.serial, answer.source, answer.destination, answer.data) == (1, 100, 1, b"")
    denial = deny(frame, answer.time)
    assert (denial.command, denial.serial, denial.source, denial.destination) == (Command.DENY, 1, 100, 1)
    assert decode_unit(answer.data) is None


def test_a_bad_checksum_is_named_with_the_expected_and_found_sums_and_the_frame_kept() -> None:
    with pytest.raises(FrameError) as caught:
        decode(golden("bad_checksum"))
    assert caught.value.reason == "checksum: expected 0x8E, found 0x8F"
    assert caught.value.frame == decode(golden("fire_alarm"))


def test_the_system_status_frame_reads_to_its_fields() -> None:
    raw = golden("system_status")
    frame = decode(raw)
    assert (frame.serial, frame.source, frame.destination) == (2, 1, 100)
    assert frame.time == TimeLabel(1, 0, 9, 18, 5, 24)
    unit = decode_unit(frame.data)
    assert unit == DataUnit(1, 1, (SystemStatus(1, 1, 0x0201, TimeLabel(0, 0, 9, 18, 5, 24)),))
    assert SystemFlag(0x0201) == SystemFlag.NORMAL | SystemFlag.BACKUP_POWER_FAULT
    assert encode(frame) == raw
    assert unit.encode() == frame.data


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda raw: b"@#" + raw[2:], "start: expected 40 40 (@@), found 40 23"),
        (lambda raw: raw[:-1] + b"$", "end: expected 23 23 (##), found 23 24"),
        (lambda raw: raw[:-3], "length: 75 bytes, the data unit length 48 makes 78"),
        (lambda raw: raw[:20], "length: 20 bytes, a frame has at least 30"),
        (lambda raw: raw[:24] + b"\x01\x04" + raw[26:], "length: data unit of 1025 bytes, over 1024"),
    ],
)
def test_each_broken_part_is_named(change: Callable[[bytes], bytes], reason: str) -> None:
    with pytest.raises(FrameError, match=f"^{re.escape(reason)}$"):
        decode(change(golden("fire_alarm")))


def test_the_splitter_joins_frames_split_across_reads_and_skips_garbage_between() -> None:
    alarm, status, bad = golden("fire_alarm"), golden("system_status"), golden("bad_checksum")
    # Garbage holding a lone "@", an "@@" with an impossible length and one without its "##".
    stream = b"\x00junk@x" + alarm + b"@@" + b"\xff" * 30 + status + b"@@" + bytes(40) + bad + b"tail@"
    splitter = Splitter()
    frames = [f for i in range(0, len(stream), 7) for f in splitter.feed(stream[i : i + 7])]
    assert frames == [alarm, status, bad]
    assert splitter.discarded == len(stream) - len(alarm) - len(status) - len(bad) - 1  # "@" kept


def test_the_splitter_yields_every_frame_of_one_read() -> None:
    alarm, status = golden("fire_alarm"), golden("system_status")
    assert list(Splitter().feed(alarm + status + alarm)) == [alarm, status, alarm]


def test_the_splitter_keeps_a_frame_whose_start_ends_a_read() -> None:
    alarm = golden("fire_alarm")
    splitter = Splitter()
    assert list(splitter.feed(b"xx" + alarm[:1])) == []
    assert list(splitter.feed(alarm[1:])) == [alarm]


def test_addresses_in_the_config_are_the_decimal_wire_number() -> None:
    assert address_number("0000000001") == 1
    assert address_number("1") == 1
    assert address_number("281474976710655") == 2**48 - 1
    for bad in ("281474976710656", "12a", "", "\uff11\uff12"):  # full-width digits
        with pytest.raises(ValueError, match="address"):
            address_number(bad)


def test_encode_refuses_what_the_fields_cannot_hold() -> None:
    frame = decode(golden("fire_alarm"))
    with pytest.raises(ValueError, match="serial number"):
        encode(replace(frame, serial=70000))
    with pytest.raises(ValueError, match="source address"):
        encode(replace(frame, source=2**48))
    with pytest.raises(ValueError, match="over 1024"):
        encode(replace(frame, data=bytes(1025)))


def test_data_units_of_the_wrong_length_and_of_other_types() -> None:
    data = decode(golden("fire_alarm")).data
    with pytest.raises(UnitError, match="type 2: 1 objects take 46 bytes, found 45"):
        decode_unit(data[:-1])
    with pytest.raises(UnitError, match="needs a type flag"):
        decode_unit(b"\x02")
    other = decode_unit(bytes((21, 1, 0x01)) + AT.encode())  # type 21: the device's own status, kept raw
    assert other == DataUnit(21, 1, (), bytes((0x01,)) + AT.encode())
    assert other.encode() == bytes((21, 1, 0x01)) + AT.encode()


def test_descriptions_are_gb18030_cut_at_a_character_and_padded() -> None:
    long = "一二三四五六七八九十一二三四五六"  # 16 characters, 32 bytes
    raw = encode_text(long)
    assert len(raw) == 31 and raw.endswith(b"\x00")
    assert decode_text(raw) == long[:15]
    assert decode_text("消防泵".encode("gb18030").ljust(31, b" ")) == "消防泵"


def test_time_labels_and_their_moments() -> None:
    moment = AT.to_datetime()
    assert moment is not None and moment.isoformat() == "2024-05-18T14:30:05"
    assert TimeLabel.of(moment) == AT
    assert TimeLabel(0, 0, 0, 0, 0, 0).to_datetime() is None
