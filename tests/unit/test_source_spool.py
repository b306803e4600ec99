"""The spool's file format and segments, on a real directory, without Kafka.

Good rows: records come back byte for byte, in order, across segments and a reopen. Bad rows: a
frame cut at every possible byte (a crash mid-write), a flipped payload byte (checksum), garbage
between frames, an empty segment: each is reported as damage of the right kind and the readable
records around it are all still there.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

from connector.source.spool import (
    DAMAGED_SUFFIX,
    FRAME_OVERHEAD,
    LOCK_NAME,
    MAGIC,
    Damage,
    Spool,
    SpooledRecord,
    SpoolError,
    decode_segment,
    encode_frame,
)


def _files(directory: Path) -> list[str]:
    """The segment files (and damaged ones) in a spool directory, without its lock file."""
    return sorted(p.name for p in directory.iterdir() if p.name != LOCK_NAME)


def _record(n: int, size: int = 40) -> SpooledRecord:
    return SpooledRecord(
        key=f"evaluation_id:E{n}".encode(),
        value=(b'{"n":%d,"pad":"' % n) + b"x" * size + b'"}',
        headers=(("x-zm-signature", b"v0=abc"), ("zoom-connector-received-at", b"1700000000000")),
        received_at_ms=1_700_000_000_000 + n,
    )


RECORDS = [_record(n) for n in range(5)]


@pytest.mark.parametrize(
    "record",
    [
        RECORDS[0],
        SpooledRecord(b"", b"", (), 0),
        SpooledRecord(b"k", b"\x00\xff" * 1000, (("h", b""),), 2**63),
        SpooledRecord(b"sha256:ab", b"{}", (("\u00e9t\u00e9", b"\x00"),) * 3, 5),
    ],
)
def test_a_frame_decodes_to_the_record(record: SpooledRecord) -> None:
    contents = decode_segment(encode_frame(record))
    assert contents.records == [record] and contents.damage == []


def test_frames_decode_in_order() -> None:
    data = b"".join(encode_frame(r) for r in RECORDS)
    assert decode_segment(data).records == RECORDS


def test_a_frame_cut_at_any_byte_is_a_truncated_tail() -> None:
    good = b"".join(encode_frame(r) for r in RECORDS[:3])
    last = encode_frame(RECORDS[3])
    for cut in range(1, len(last)):
        contents = decode_segment(good + last[:cut])
        assert contents.records == RECORDS[:3], cut
        assert contents.damage == [Damage(len(good), cut, "truncated")], cut


def test_a_bad_checksum_skips_that_record_only() -> None:
    frames = [bytearray(encode_frame(r)) for r in RECORDS]
    frames[2][FRAME_OVERHEAD + 5] ^= 0x01
    contents = decode_segment(b"".join(frames))
    assert contents.records == [RECORDS[0], RECORDS[1], RECORDS[3], RECORDS[4]]
    offset = sum(len(f) for f in frames[:2])
    assert contents.damage == [Damage(offset, len(frames[2]), "checksum")]


def test_a_matching_checksum_over_fields_that_do_not_add_up_is_damage() -> None:
    payload = b"\x00" * 5
    frame = MAGIC + len(payload).to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big")
    contents = decode_segment(frame + payload + encode_frame(RECORDS[0]))
    assert contents.records == [RECORDS[0]]
    assert [d.reason for d in contents.damage] == ["checksum"]


def test_garbage_between_frames_is_skipped() -> None:
    first, second = encode_frame(RECORDS[0]), encode_frame(RECORDS[1])
    contents = decode_segment(first + b"garbage" + MAGIC + b"\x00" + second)
    assert contents.records == RECORDS[:2]
    assert contents.damage == [Damage(len(first), 10, "not_a_frame")]


@pytest.mark.parametrize("data", [b"", b"Z", MAGIC, MAGIC + b"\x00\x00"])
def test_nothing_or_a_torn_header_holds_no_record(data: bytes) -> None:
    contents = decode_segment(data)
    assert contents.records == []
    assert [d.reason for d in contents.damage] == (["truncated"] if data else [])


def test_appends_reopen_in_order_across_segments(tmp_path: Path) -> None:
    frame = len(encode_frame(RECORDS[0]))
    spool, found = Spool.open(tmp_path, max_bytes=10**6, segment_bytes=2 * frame)
    assert found == {}
    for record in RECORDS:
        assert spool.append([record]) == 1
    assert spool.records() == 5 and spool.size_bytes() == 5 * frame
    assert spool.oldest_received_ms() == RECORDS[0].received_at_ms
    spool.close()

    again, found = Spool.open(tmp_path, max_bytes=10**6, segment_bytes=2 * frame)
    assert [len(c.records) for c in found.values()] == [2, 2, 1]
    assert again.sealed() == sorted(found)
    assert [r for s in again.sealed() for r in again.read(s).records] == RECORDS
    assert again.records() == 5
    again.append([_record(9)])  # a new segment, never one an earlier process wrote
    assert len(_files(tmp_path)) == 4


def test_a_full_spool_takes_the_records_that_fit(tmp_path: Path) -> None:
    frame = len(encode_frame(RECORDS[0]))
    spool, _ = Spool.open(tmp_path, max_bytes=3 * frame + frame // 2)
    assert spool.append(RECORDS) == 3
    assert spool.append([RECORDS[3]]) == 0
    assert spool.records() == 3 and spool.size_bytes() == 3 * frame


def test_acknowledged_records_and_removed_segments(tmp_path: Path) -> None:
    spool, _ = Spool.open(tmp_path, max_bytes=10**6)
    spool.append(RECORDS)
    spool.seal_active()
    (sequence,) = spool.sealed()
    spool.acknowledged(sequence, 3, RECORDS[3].received_at_ms)
    assert spool.records() == 2 and spool.oldest_received_ms() == RECORDS[3].received_at_ms
    spool.acknowledged(sequence, 2, None)
    assert spool.records() == 0 and spool.oldest_received_ms() is None
    assert spool.remove(sequence, damaged=False) is None
    assert _files(tmp_path) == [] and spool.size_bytes() == 0


def test_a_damaged_segment_is_kept_aside(tmp_path: Path) -> None:
    spool, _ = Spool.open(tmp_path, max_bytes=10**6)
    spool.append(RECORDS[:2])
    spool.seal_active()
    (sequence,) = spool.sealed()
    kept = spool.remove(sequence, damaged=True)
    assert kept is not None and kept.name.endswith(DAMAGED_SUFFIX) and kept.exists()
    assert spool.size_bytes() == 0
    spool.close()
    reopened, found = Spool.open(tmp_path, max_bytes=10**6)
    assert found == {} and reopened.records() == 0


def test_an_empty_segment_left_behind_is_removed(tmp_path: Path) -> None:
    (tmp_path / "segment-000000000007.spool").write_bytes(b"")
    spool, found = Spool.open(tmp_path, max_bytes=10**6)
    assert found == {} and spool.sealed() == [] and _files(tmp_path) == []
    spool.append([RECORDS[0]])
    assert _files(tmp_path) == ["segment-000000000008.spool"]


def test_a_torn_tail_left_behind_is_found_at_open(tmp_path: Path) -> None:
    data = encode_frame(RECORDS[0]) + encode_frame(RECORDS[1])[:7]
    (tmp_path / "segment-000000000001.spool").write_bytes(data)
    spool, found = Spool.open(tmp_path, max_bytes=10**6)
    assert found[1].records == [RECORDS[0]]
    assert [d.reason for d in found[1].damage] == ["truncated"]
    assert spool.records() == 1 and spool.size_bytes() == len(data)


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    spool, _ = Spool.open(tmp_path, max_bytes=10**6)
    spool.append([RECORDS[0]])
    segment = tmp_path / _files(tmp_path)[0]
    size = segment.stat().st_size
    assert spool._file is not None
    os.close(spool._file)
    spool._file = os.open(segment, os.O_RDONLY)  # the next write fails
    with pytest.raises(SpoolError):
        spool.append([RECORDS[1]])
    assert segment.stat().st_size == size and spool.records() == 1
    spool.append([RECORDS[1]])  # into a new segment
    assert spool.records() == 2 and len(_files(tmp_path)) == 2


def test_one_process_at_a_time(tmp_path: Path) -> None:
    spool, _ = Spool.open(tmp_path, max_bytes=10**6)
    with pytest.raises(SpoolError, match="another process uses the spool directory"):
        Spool.open(tmp_path, max_bytes=10**6)
    spool.close()
    Spool.open(tmp_path, max_bytes=10**6)[0].close()


def test_drain_progress_survives_a_restart(tmp_path: Path) -> None:
    spool, _ = Spool.open(tmp_path, max_bytes=10**6)
    spool.append(RECORDS)
    spool.seal_active()
    (sequence,) = spool.sealed()
    spool.acknowledged(sequence, 3, RECORDS[3].received_at_ms)
    spool.drained_up_to(sequence, 3)
    spool.close()

    again, found = Spool.open(tmp_path, max_bytes=10**6)
    assert len(found[sequence].records) == 5  # the segment is whole; 3 are known to be sent
    assert again.drained(sequence) == 3 and again.records() == 2
    assert again.oldest_received_ms() == RECORDS[3].received_at_ms
    again.remove(sequence, damaged=False)
    assert _files(tmp_path) == []


def test_stray_progress_notes_are_removed(tmp_path: Path) -> None:
    (tmp_path / "segment-000000000003.spool.drained").write_text("7")
    (tmp_path / "segment-000000000004.spool.drained.tmp").write_text("")
    (tmp_path / "segment-000000000004.spool").write_bytes(encode_frame(RECORDS[0]))
    (tmp_path / "segment-000000000004.spool.drained").write_text("not a number")
    spool, _ = Spool.open(tmp_path, max_bytes=10**6)
    assert _files(tmp_path) == ["segment-000000000004.spool", "segment-000000000004.spool.drained"]
    assert spool.drained(4) == 0 and spool.records() == 1
