"""Which write errors are about the record itself, so retrying the same bytes cannot succeed.

The delivery core (:mod:`connector.worker.delivery`) retries every other failure; a refused record
is handed back to its agent (the raw agent dead-letters a typed record Kafka refused). The
worker's records, table entries included, are written by librdkafka
(:mod:`connector.kafka.batch_writer` knows its codes); a sink built without that writer (unit
tests) writes through Faust's producer, whose aiokafka error classes are known here.

Patch: no upstream issue; transport-specific knowledge. Pinned by
``tests/unit/test_worker_delivery.py`` (a too-large record is refused, a timeout retried).
Remove with the sink's path without the writer (its aiokafka half; librdkafka's codes stay).
"""

from __future__ import annotations

from typing import Final

from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from connector.kafka.batch_writer import WriteError

_RECORD_ERRORS: Final = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
)


def refuses_record(error: BaseException) -> bool:
    """Whether ``error`` says the record can never be written: librdkafka's refusal codes (the
    topic records' writer), aiokafka's record errors (Faust's producer, the tables), and anything
    else that is not a Kafka error (a record refused before it left, e.g. larger than
    ``max_request_size``)."""
    if isinstance(error, WriteError):
        return error.refused
    return isinstance(error, _RECORD_ERRORS) or not isinstance(error, KafkaError)
