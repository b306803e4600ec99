"""What the figures were measured on: the machine, the versions, the broker."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "load_before": " ".join(f"{x:.2f}" for x in load),
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def versions(kafka: str) -> dict[str, str]:
    import confluent_kafka

    return {
        "Python": platform.python_version(),
        "Kafka": kafka,
        "librdkafka": confluent_kafka.libversion()[0],
        "confluent-kafka": _version("confluent-kafka"),
        "faust-streaming": _version("faust-streaming"),
        "aiokafka": _version("aiokafka"),
        "aiohttp": _version("aiohttp"),
        "fastavro": _version("fastavro"),
        "orjson": _version("orjson"),
        "wrk": _wrk_version(),
    }


def _wrk_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    text = (out.stdout or out.stderr).split()
    return text[1] if len(text) > 1 else "unknown"


def broker(bootstrap: str) -> tuple[str, int | None]:
    """The broker's Kafka version and pid when it is the connector's local broker, else what can
    be said about it (the Kafka protocol does not tell a client the broker's release)."""
    try:
        from connector.kafka.local_broker import LocalBroker

        status = LocalBroker().status()
    except Exception:
        return "unknown (not the local broker)", None
    if status.running and status.bootstrap == bootstrap:
        return f"{status.version} (local broker, KRaft)", status.pid
    return "unknown (not the local broker)", None
