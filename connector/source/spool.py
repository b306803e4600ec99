"""The source's disk spool: an append-only directory of segment files holding raw records.

When Kafka does not acknowledge a webhook in time, the source writes the record here, fsyncs, and
only then answers 200; :mod:`connector.source.drainer` later sends the spool to Kafka in order.

Layout: ``<SOURCE_SPOOL_DIR>/segment-<12-digit sequence>.spool``, oldest first, and a ``lock``
file that one process at a time holds (``flock``). That process writes the newest ("active")
segment; every segment found at start-up is sealed and drained, and new records go to a fresh
segment, so nothing is ever appended after a torn tail. A segment is deleted
once every record in it is acknowledged; a segment in which damage was found is renamed
``*.damaged`` instead, for the operator to inspect (it no longer counts towards the limit).
While a segment drains, ``<segment>.drained`` holds how many of its leading records Kafka has
acknowledged, so a restarted source does not send them again.

Frame (big-endian): ``b"ZS"``, payload length (u32), CRC-32 of the payload (u32), payload.
Payload: receive time in epoch ms (u64), key length (u32), value length (u32), header count (u16),
key, value, then per header: name length (u16), value length (u32), name (UTF-8), value.

Reading is tolerant: a frame cut short (a crash mid-write), a payload whose checksum does not match,
or bytes that are no frame at all are reported as :class:`Damage` and skipped: the reader looks
for the next position where a whole frame with a matching checksum starts and goes on from there.
An append is fsynced before it returns; a failed write is cut back off the file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from connector.errors import ConnectorError

log = logging.getLogger(__name__)

MAGIC: Final = b"ZS"
_FRAME: Final = struct.Struct(">2sII")  # magic, payload length, CRC-32 of the payload
_RECORD: Final = struct.Struct(">QIIH")  # received_at_ms, key length, value length, headers
_HEADER: Final = struct.Struct(">HI")  # name length, value length
FRAME_OVERHEAD: Final = _FRAME.size
DEFAULT_SEGMENT_BYTES: Final = 8 * 1024 * 1024
_SEGMENT_NAME: Final = re.compile(r"^segment-(\d{12})\.spool$")
DAMAGED_SUFFIX: Final = ".damaged"
LOCK_NAME: Final = "lock"
PROGRESS_SUFFIX: Final = ".drained"

DAMAGE_REASONS: Final = ("truncated", "checksum", "not_a_frame")
"""Why bytes of a segment could not be read: a frame cut short; a payload whose CRC-32 does not
match (or whose fields do not add up); bytes where no frame starts."""


class SpoolError(ConnectorError):
    """The spool cannot take a record (an I/O error, or it is full)."""

    reason = "spool_error"


class SpoolFull(SpoolError):
    """The record does not fit under ``SOURCE_SPOOL_MAX_BYTES``."""

    reason = "spool_full"


@dataclass(frozen=True)
class SpooledRecord:
    """One raw record as the source would have written it to Kafka, and when it came in."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    received_at_ms: int


@dataclass(frozen=True)
class Damage:
    """A stretch of a segment that holds no readable record."""

    offset: int
    length: int
    reason: str


@dataclass
class SegmentContents:
    """What reading one segment gave: its records in order, and any damage found."""

    records: list[SpooledRecord] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)


def encode_frame(record: SpooledRecord) -> bytes:
    """``record`` as one frame of a segment."""
    head = (record.received_at_ms, len(record.key), len(record.value), len(record.headers))
    parts = [
        _RECORD.pack(*head),
        record.key,
        record.value,
    ]
    for name, value in record.headers:
        encoded = name.encode("utf-8")
        parts += [_HEADER.pack(len(encoded), len(value)), encoded, value]
    payload = b"".join(parts)
    return _FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> SpooledRecord | None:
    """The record in a payload whose checksum matched; ``None`` if its fields do not add up."""
    try:
        received_at_ms, key_length, value_length, count = _RECORD.unpack_from(payload, 0)
        at = _RECORD.size
        key = payload[at : at + key_length]
        at += key_length
        value = payload[at : at + value_length]
        at += value_length
        headers = []
        for _ in range(count):
            name_length, header_length = _HEADER.unpack_from(payload, at)
            at += _HEADER.size
            name = payload[at : at + name_length].decode("utf-8")
            at += name_length
            headers.append((name, payload[at : at + header_length]))
            at += header_length
    except (struct.error, UnicodeDecodeError):
        return None
    if at != len(payload) or len(key) != key_length or len(value) != value_length:
        return None
    return SpooledRecord(key, value, tuple(headers), received_at_ms)


def _frame_at(data: bytes, at: int) -> tuple[SpooledRecord | None, int, str]:
    """The frame starting at ``at``: (record, end, "") or (None, at, why there is none)."""
    if len(data) - at < _FRAME.size:
        torn = data.startswith(MAGIC[: len(data) - at], at)
        return None, at, "truncated" if torn else "not_a_frame"
    magic, length, checksum = _FRAME.unpack_from(data, at)
    if magic != MAGIC:
        return None, at, "not_a_frame"
    end = at + _FRAME.size + length
    if end > len(data):
        return None, at, "truncated"
    payload = data[at + _FRAME.size : end]
    if zlib.crc32(payload) != checksum:
        return None, at, "checksum"
    record = _decode_payload(payload)
    if record is None:
        return None, at, "checksum"
    return record, end, ""


def decode_segment(data: bytes) -> SegmentContents:
    """Every readable record of a segment's bytes, in order, and the damage between them.

    After damage the reader resumes at the next ``MAGIC`` where a whole frame with a matching
    checksum starts; a stretch with none to the end is one :class:`Damage` (the torn tail).
    """
    contents = SegmentContents()
    at = 0
    while at < len(data):
        record, end, reason = _frame_at(data, at)
        if record is not None:
            contents.records.append(record)
            at = end
            continue
        resume = _next_frame(data, at + 1)
        contents.damage.append(Damage(at, resume - at, reason))
        at = resume
    return contents


def _next_frame(data: bytes, start: int) -> int:
    """Where the next readable frame at or after ``start`` begins, else ``len(data)``."""
    at = data.find(MAGIC, start)
    while at != -1:
        if _frame_at(data, at)[0] is not None:
            return at
        at = data.find(MAGIC, at + 1)
    return len(data)


@dataclass
class _Segment:
    sequence: int
    path: Path
    size: int
    records: int  # not yet acknowledged
    oldest_ms: int | None
    drained: int = 0  # leading records acknowledged (persisted in the progress file)

    @property
    def progress_path(self) -> Path:
        return self.path.with_name(self.path.name + PROGRESS_SUFFIX)


class Spool:
    """The segment files of one spool directory; thread-safe (appends run in a worker thread).

    Bookkeeping in memory: per segment its size, the records not yet acknowledged and the receive
    time of the oldest of them, for the metrics and ``/readyz``.
    """

    def __init__(
        self, directory: Path, max_bytes: int, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()  # the bookkeeping below; never held during disk I/O
        self._write_lock = threading.Lock()  # one append (or seal) at a time
        self._segments: dict[int, _Segment] = {}
        self._active: _Segment | None = None
        self._file: int | None = None  # the active segment's descriptor
        self._next_sequence = 1
        self._lock_file: int | None = None
        # Totals kept beside the segments, read without the lock (an int read is atomic), so the
        # event loop never waits for an fsync in progress to learn whether records wait.
        self._total_bytes = 0
        self._pending = 0

    @classmethod
    def open(
        cls, directory: Path, max_bytes: int, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> tuple[Spool, dict[int, SegmentContents]]:
        """The spool in ``directory`` (created if missing), with every segment an earlier process
        left sealed; also what reading them gave, by sequence, so damage can be reported."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool directory {directory}: {exc}") from exc
        spool = cls(directory, max_bytes, segment_bytes)
        spool._lock_file = _lock(directory / LOCK_NAME)
        found: dict[int, SegmentContents] = {}
        names = {path.name for path in directory.iterdir()}
        for name in sorted(names):
            orphan = name.endswith(PROGRESS_SUFFIX) and (
                name.removesuffix(PROGRESS_SUFFIX) not in names
            )
            if orphan or name.endswith(PROGRESS_SUFFIX + ".tmp"):
                (directory / name).unlink()  # its segment was deleted, or a crash cut a note
            match = _SEGMENT_NAME.match(name)
            if match is None:
                continue
            path = directory / name
            sequence = int(match.group(1))
            spool._next_sequence = max(spool._next_sequence, sequence + 1)
            data = path.read_bytes()
            if not data:
                path.unlink()
                continue
            contents = decode_segment(data)
            found[sequence] = contents
            segment = _Segment(sequence, path, len(data), 0, None)
            segment.drained = min(_read_progress(segment.progress_path), len(contents.records))
            waiting = contents.records[segment.drained :]
            segment.records = len(waiting)
            segment.oldest_ms = waiting[0].received_at_ms if waiting else None
            spool._segments[sequence] = segment
            spool._total_bytes += len(data)
            spool._pending += segment.records
        return spool, found

    # --- writing ------------------------------------------------------------------------------

    def append(self, records: Sequence[SpooledRecord]) -> int:
        """Write as many of ``records`` as fit under the limit, in order, then fsync; blocking.

        Returns how many were written (the rest did not fit). Raises :class:`SpoolError` when the
        write or the fsync failed (none of them is then in the spool). The bookkeeping lock is
        not held during the write and the fsync, so readers of the state never wait for the disk.
        """
        frames: list[bytes] = []
        with self._write_lock:
            with self._lock:
                room = self.max_bytes - self._total_bytes
            for record in records:
                frame = encode_frame(record)
                if len(frame) > room:
                    break
                frames.append(frame)
                room -= len(frame)
            if not frames:
                return 0
            segment, descriptor = self._writable()
            data = b"".join(frames)
            try:
                written = os.write(descriptor, data)
                if written != len(data):
                    raise OSError(f"short write: {written} of {len(data)} bytes")
                os.fsync(descriptor)
            except OSError as exc:
                self._undo_write(segment, descriptor)
                raise SpoolError(f"cannot write to the spool {segment.path}: {exc}") from exc
            with self._lock:
                segment.size += len(data)
                segment.records += len(frames)
                self._total_bytes += len(data)
                self._pending += len(frames)
                if segment.oldest_ms is None:
                    segment.oldest_ms = records[0].received_at_ms
                if segment.size >= self.segment_bytes:
                    self._seal()
            return len(frames)

    def _writable(self) -> tuple[_Segment, int]:
        """The active segment and its descriptor, a new one if none is open (write lock held)."""
        if self._active is not None and self._file is not None:
            return self._active, self._file
        sequence = self._next_sequence
        self._next_sequence += 1
        path = self.directory / f"segment-{sequence:012d}.spool"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot create a spool segment {path}: {exc}") from exc
        segment = _Segment(sequence, path, 0, 0, None)
        with self._lock:
            self._file, self._active = descriptor, segment
            self._segments[sequence] = segment
        try:
            _fsync_directory(self.directory)
        except OSError as exc:
            self._undo_write(segment, descriptor)
            raise SpoolError(f"cannot create a spool segment {path}: {exc}") from exc
        return segment, descriptor

    def _undo_write(self, segment: _Segment, descriptor: int) -> None:
        # Cut the partial frame off; if even that fails, later appends go to a new segment and a
        # reader skips the torn bytes as damage.
        try:
            os.ftruncate(descriptor, segment.size)
        except OSError:
            log.exception("spool segment could not be cut back path=%s", segment.path)
        with self._lock:
            self._seal()

    def seal_active(self) -> None:
        """Close the active segment, so it can be drained; the next append starts a new one.
        Blocking: waits for an append under way."""
        with self._write_lock, self._lock:
            self._seal()

    def _seal(self) -> None:
        # Callers hold both locks.
        if self._file is not None:
            os.close(self._file)
        self._file = None
        if self._active is not None and self._active.size == 0:
            self._remove(self._active, damaged=False)
        self._active = None

    def close(self) -> None:
        """Seal the active segment and let another process take the directory."""
        self.seal_active()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    # --- draining -----------------------------------------------------------------------------

    def sealed(self) -> list[int]:
        """The sequences of the sealed segments, oldest first."""
        with self._lock:
            active = self._active.sequence if self._active is not None else None
            return sorted(s for s in self._segments if s != active)

    def active_records(self) -> int:
        with self._lock:
            return self._active.records if self._active is not None else 0

    def read(self, sequence: int) -> SegmentContents:
        """The records of a sealed segment, and its damage; blocking."""
        with self._lock:
            path = self._segments[sequence].path
        return decode_segment(path.read_bytes())

    def drained(self, sequence: int) -> int:
        """How many leading records of a segment are known to be in Kafka already."""
        with self._lock:
            return self._segments[sequence].drained

    def acknowledged(self, sequence: int, count: int, oldest_ms: int | None) -> None:
        """``count`` more records of a segment are in Kafka; ``oldest_ms``: the receive time of
        the oldest one still waiting (``None``: none)."""
        with self._lock:
            segment = self._segments[sequence]
            count = min(count, segment.records)
            segment.records -= count
            self._pending -= count
            segment.oldest_ms = oldest_ms

    def drained_up_to(self, sequence: int, count: int) -> None:
        """Note that the first ``count`` records of a segment are all in Kafka, so a process that
        restarts does not send them again. Not fsynced: losing the note only costs duplicates."""
        with self._lock:
            segment = self._segments[sequence]
            if count <= segment.drained:
                return
            segment.drained = count
            progress = segment.progress_path
        scratch = progress.with_name(progress.name + ".tmp")
        scratch.write_text(str(count), encoding="ascii")
        os.replace(scratch, progress)

    def remove(self, sequence: int, *, damaged: bool) -> Path | None:
        """Delete a drained segment, or rename it ``*.damaged``; the new path if renamed."""
        with self._lock:
            segment = self._segments.get(sequence)
            if segment is None:
                return None
            return self._remove(segment, damaged=damaged)

    def _remove(self, segment: _Segment, *, damaged: bool) -> Path | None:
        del self._segments[segment.sequence]
        self._total_bytes -= segment.size
        self._pending -= segment.records
        kept = None
        if damaged:
            kept = segment.path.with_name(segment.path.name + DAMAGED_SUFFIX)
            segment.path.rename(kept)
        else:
            segment.path.unlink(missing_ok=True)
        segment.progress_path.unlink(missing_ok=True)
        return kept

    # --- state --------------------------------------------------------------------------------

    def size_bytes(self) -> int:
        """Bytes of the segment files on disk (what counts towards the limit)."""
        return self._total_bytes

    def records(self) -> int:
        """Records written and not yet acknowledged by Kafka."""
        return self._pending

    def oldest_received_ms(self) -> int | None:
        """The receive time of the oldest record not yet acknowledged, if any."""
        with self._lock:
            times = [s.oldest_ms for s in self._segments.values() if s.oldest_ms is not None]
            return min(times) if times else None


def _read_progress(path: Path) -> int:
    """The count in a segment's progress file; 0 when there is none or it is unreadable."""
    try:
        return max(0, int(path.read_text(encoding="ascii")))
    except (OSError, ValueError):
        return 0


def _lock(path: Path) -> int:
    """An exclusive lock on ``path``: two sources draining one spool would send it twice and
    write segments of the same name."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(descriptor)
        raise SpoolError(f"another process uses the spool directory {path.parent}") from exc
    return descriptor


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
