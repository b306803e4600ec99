"""Which write errors are about the record itself, so retrying the same bytes cannot succeed.

The delivery core (:mod:`connector.worker.delivery`) retries every other failure; a refused record
is handed back to its agent (the raw agent dead-letters a typed record Kafka refused). The error
classes are the aiokafka driver's (Faust's producer raises them), so this lives with the patches:
another transport raises other classes.

Patch: no upstream issue; transport-specific knowledge. Pinned by
``tests/unit/test_worker_delivery.py`` (a too-large record is refused, a timeout retried).
Remove when the worker stops writing through Faust's aiokafka producer.
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

_RECORD_ERRORS: Final = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
)


def refuses_record(error: BaseException) -> bool:
    """Whether ``error`` says the record can never be written (anything not a Kafka error counts:
    a record refused before it left, e.g. larger than ``max_request_size``)."""
    return isinstance(error, _RECORD_ERRORS) or not isinstance(error, KafkaError)
