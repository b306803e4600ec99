"""The local Kafka images' mapping of KAFKA_* variables to broker properties
(tests/images/kafka/bin/kafka-env-to-properties), checked against each image's documented rules:

* apache/kafka: ``.`` is ``_``, ``_`` is ``__``, ``-`` is ``___``;
* confluentinc/cp-kafka: ``.`` is ``_``, ``-`` is ``__``, ``_`` is ``___``.

The script is plain POSIX sh, run here as the images run it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tests/images/kafka/bin/kafka-env-to-properties"


def properties(style: str, env: dict[str, str]) -> list[str]:
    completed = subprocess.run(
        ["sh", str(SCRIPT), style],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return completed.stdout.splitlines()


@pytest.mark.parametrize(
    ("style", "variable", "line"),
    [
        ("apache", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "listener.security.protocol.map=v"),
        ("apache", "KAFKA_A__B___C_D", "a_b-c.d=v"),
        ("confluent", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "listener.security.protocol.map=v"),
        ("confluent", "KAFKA_A__B___C_D", "a-b_c.d=v"),
    ],
)
def test_names(style: str, variable: str, line: str) -> None:
    assert properties(style, {variable: "v"}) == [line]


def test_values_are_kept_whole_and_jvm_variables_left_out() -> None:
    env = {
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092,HOST://localhost:9094",
        "KAFKA_SASL_JAAS_CONFIG": "x required user=a password=b=c;",
        "KAFKA_HEAP_OPTS": "-Xmx1G",
        "KAFKA_OPTS": "-Dx=y",
        "KAFKA_JMX_PORT": "9999",
        "CLUSTER_ID": "abc",
        "OTHER": "1",
    }
    assert properties("apache", env) == [
        "advertised.listeners=PLAINTEXT://kafka:9092,HOST://localhost:9094",
        "sasl.jaas.config=x required user=a password=b=c;",
    ]
