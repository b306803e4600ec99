"""Compare HTTP stacks for the source: req/s and p50/p99 of a minimal signed-webhook handler.

    .venv/bin/pip install -e '.[bench]'        # uvicorn, granian, uvloop (aiohttp is a dependency)
    apt-get install wrk                         # optional; else the Python load generator is used
    .venv/bin/python bench/http_stack/run.py [--stacks aiohttp,uvicorn,...] [--duration 10]
        [--connections 50] [--max-requests 200000] [--load wrk|python]
    .venv/bin/python bench/http_stack/run.py --stacks source-kafka   # the real source on Kafka

For each stack (see ``servers.py``) it starts the server in its own process on 127.0.0.1, checks
that a signed request is answered 200 and a tampered one 401, warms it up, then drives it from a
separate load-generator process (wrk, or ``loadgen.py``) with one pre-signed body (the spec's
``quality_management.evaluation_completed`` example) over keep-alive connections, bounded by
``--duration`` seconds and ``--max-requests`` answers. On Linux the server is pinned to CPU 0 and
the load generator to CPU 1 (``taskset``), so they do not compete for one core. It prints a
Markdown table; ``--json FILE`` also writes the figures. ``source-kafka`` writes to the broker at
``KAFKA_BOOTSTRAP_SERVERS`` (default ``localhost:9092``; it shares the CPUs with the server) on a
topic of its own, deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from servers import BENCH_SECRET, PATH, STACKS  # noqa: E402

from connector.source.signature import signed_headers  # noqa: E402

DEFAULT_STACKS = ("aiohttp", "aiohttp-uvloop", "uvicorn", "granian", "source-app")
EVENT_TYPE = "quality_management.evaluation_completed"


def _body() -> bytes:
    try:
        from connector.spec import load_catalog

        return load_catalog().example_bytes(EVENT_TYPE)
    except Exception:  # the spec is optional for the bench; any JSON webhook will do
        return b'{"event":"%s","event_ts":1,"payload":{"object":{"evaluation_id":"E1"}}}' % (
            EVENT_TYPE.encode()
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pinned(cpu: int, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *command]
    return command


def _post(port: int, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{PATH}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def _wait_until_up(port: int, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not come up")


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _wrk(
    port: int, body: bytes, headers: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        body_file = Path(folder) / "body.json"
        body_file.write_bytes(body)
        header_lines = "\n".join(
            f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}"
            for name, value in headers.items()
        )
        script = Path(folder) / "post.lua"
        script.write_text(
            f"""
local file = io.open({json.dumps(str(body_file))}, "rb")
wrk.method = "POST"
wrk.body = file:read("*all")
file:close()
{header_lines}
local limit = {args.max_requests}
local count = 0
function response(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
"""
        )
        command = [
            "wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
            "-s", str(script), f"http://127.0.0.1:{port}{PATH}",
        ]  # fmt: skip
        output = subprocess.run(
            _pinned(1, command),
            capture_output=True,
            text=True,
            check=True,
            timeout=args.duration + 60,
        ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    requests = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if requests is None or rps is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return {
        "requests": int(requests.group(1)),
        "non_200": int(non_2xx.group(1)) if non_2xx else 0,
        "errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "rps": float(rps.group(1)),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
    }


def _python_load(
    port: int, body: bytes, headers: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        command = [
            sys.executable, str(HERE / "loadgen.py"), f"http://127.0.0.1:{port}{PATH}",
            "--body-file", body_file.name, "--headers-json", json.dumps(headers),
            "--connections", str(args.connections), "--duration", str(args.duration),
            "--max-requests", str(args.max_requests),
        ]  # fmt: skip
        output = subprocess.run(
            _pinned(1, command),
            capture_output=True,
            text=True,
            check=True,
            timeout=args.duration + 60,
        ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def bench(stack: str, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    command = [sys.executable, str(HERE / "servers.py"), stack, "--port", str(port)]
    prefix = f"bench-{os.getpid()}-{int(time.time())}"
    env = {**os.environ, "BENCH_TOPIC_PREFIX": prefix}
    server = subprocess.Popen(_pinned(0, command), cwd=HERE, env=env)
    try:
        _wait_until_up(port, server)
        signature = signed_headers(BENCH_SECRET.encode(), body, time.time())
        headers = {"content-type": "application/json", **signature}
        if _post(port, body, headers) != 200 or _post(port, body + b" ", headers) != 401:
            raise RuntimeError(f"{stack}: the handler does not verify signatures as expected")
        load = _wrk if args.load == "wrk" else _python_load
        warmup = argparse.Namespace(**{**vars(args), "duration": args.warmup})
        load(port, body, headers, warmup)
        result = load(port, body, headers, args)
    finally:
        _stop(server)
        if stack == "source-kafka":
            _delete_topic(f"{prefix}.webhooks.raw")
    return {"stack": stack, **result}


def _delete_topic(topic: str) -> None:
    from confluent_kafka.admin import AdminClient

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default=",".join(DEFAULT_STACKS))
    parser.add_argument("--duration", type=int, default=10, help="seconds per stack")
    parser.add_argument("--warmup", type=int, default=2, help="seconds, not measured")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--load", choices=["wrk", "python"], default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    args.load = args.load or ("wrk" if shutil.which("wrk") else "python")
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    unknown = set(stacks) - set(STACKS)
    if unknown:
        parser.error(f"unknown stacks: {', '.join(sorted(unknown))}")

    body = _body()
    print(
        f"load={args.load} connections={args.connections} duration={args.duration}s "
        f"max_requests={args.max_requests} body={len(body)} bytes cpus={os.cpu_count()}",
        flush=True,
    )
    results = []
    for stack in stacks:
        results.append(bench(stack, body, args))
        print(f"  done: {stack}", flush=True)
    print("\n| stack | req/s | p50 ms | p99 ms | requests | non-200 | socket errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['stack']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['requests']} | {r['non_200']} | {r['errors']} |"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"settings": vars(args) | {"json": None}, "results": results})
        )


if __name__ == "__main__":
    main()
