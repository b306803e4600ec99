"""The worker's Kafka consumer is built with the fetch settings (``worker.patches.fetching``)."""

from __future__ import annotations

import inspect
from pathlib import Path

import faust
from aiokafka import AIOKafkaConsumer

from connector.settings import Settings
from connector.worker.app import create_app


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(worker_data_dir=str(tmp_path), **values)  # type: ignore[arg-type]


async def _fetch_settings(app: faust.App) -> tuple[int, int]:
    """Minimum bytes and maximum wait of the aiokafka consumer Faust's consumer thread would
    start for ``app``."""
    thread = app.consumer._thread
    try:
        consumer: AIOKafkaConsumer = thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()
    finally:
        thread.thread_loop.close()  # the thread never started here


async def test_the_consumer_waits_for_the_configured_bytes_or_milliseconds(tmp_path: Path) -> None:
    settings = _settings(tmp_path, worker_fetch_min_bytes=12345, worker_fetch_max_wait_ms=7)
    assert await _fetch_settings(create_app(settings, installers=[])) == (12345, 7)


async def test_the_defaults_hold_a_fetch_for_64_kib_or_20_ms(tmp_path: Path) -> None:
    assert await _fetch_settings(create_app(_settings(tmp_path), installers=[])) == (65536, 20)


async def test_faust_alone_would_answer_every_record() -> None:
    """What the override changes: faust-streaming's own consumer (1 byte, 1.5 s)."""
    app = faust.App("plain", broker="kafka://localhost:9092", autodiscover=False)
    assert await _fetch_settings(app) == (1, 1500)


def test_aiokafka_hands_the_two_values_to_its_fetcher_when_it_starts() -> None:
    # The override sets them on a consumer not started yet; aiokafka must read them in start().
    source = inspect.getsource(AIOKafkaConsumer.start)
    assert "fetch_min_bytes=self._fetch_min_bytes" in source
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source
