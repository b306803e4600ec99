"""Saturation load with wrk (closed loop, keep-alive), cycling through a pre-signed request set.

``bench/http_stack/run.py`` drives wrk with one body; here wrk's Lua script loads the whole request
set at start-up (``ts<TAB>sig<TAB>body`` lines) and hands out the pre-formatted requests in turn, so
records spread over the raw topic's partitions as real traffic does, and no signing happens while
wrk measures. wrk runs pinned to the load CPU; its output is parsed into the same figures.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.http_stack.run import _ms
from bench.http_stack.servers import PATH
from bench.procs import LOAD_CPU, pinned

_SCRIPT = """
local path = {path}
local requests = {{}}
local index = 0
function init(args)
  local file = io.open(path, "rb")
  for line in file:lines() do
    local ts, sig, body = line:match("^(%d+)\\t([^\\t]+)\\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "{target}", {{
      ["Content-Type"] = "application/json",
      ["x-zm-request-timestamp"] = ts,
      ["x-zm-signature"] = sig,
    }}, body)
  end
  file:close()
end
function request()
  index = index % #requests + 1
  return requests[index]
end
"""


def parse_wrk(output: str) -> dict[str, Any]:
    """wrk's ``--latency`` report as requests, non-2xx, socket errors, req/s, p50/p99 (ms)."""
    percentiles = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", output, re.MULTILINE))
    requests = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if requests is None or rps is None or not {"50", "99"} <= set(percentiles):
        raise ValueError(f"cannot read wrk's output:\n{output}")
    total = int(requests.group(1))
    bad = int(non_2xx.group(1)) if non_2xx else 0
    rate = float(rps.group(1))
    return {
        "requests": total,
        "non_2xx": bad,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "rps": rate,
        "ok_rps": rate * (total - bad) / total if total else 0.0,
        "p50_ms": _ms(percentiles["50"]),
        "p90_ms": _ms(percentiles["90"]) if "90" in percentiles else None,
        "p99_ms": _ms(percentiles["99"]),
    }


def run_wrk(port: int, wrk_lines: Path, duration: float, connections: int) -> dict[str, Any]:
    """wrk for ``duration`` seconds (1 thread, ``connections`` keep-alive connections)."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "signed.lua"
        script.write_text(_SCRIPT.format(path=json.dumps(str(wrk_lines)), target=PATH))
        command = [
            "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
            "-s", str(script), f"http://127.0.0.1:{port}{PATH}",
        ]  # fmt: skip
        output = subprocess.run(
            pinned(LOAD_CPU, command),
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 60,
        ).stdout
    return parse_wrk(output)
