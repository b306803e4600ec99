"""``zoom-connector worker`` for the bench, with the agent score aggregates on or off.

    python -m bench.worker_main [--aggregates on|off] [--floor [faust|librdkafka]]

"on" runs the worker exactly as ``zoom-connector worker`` does, adding the aggregates' installer
if the tree does not install it yet; "off" leaves it out, to show what the aggregates cost.
``--floor`` runs the worker's Faust app with only a forwarding agent (:mod:`bench.faust_floor`)
and the metrics page; ``--floor librdkafka`` has that agent write with librdkafka instead of Faust.
The configuration comes from the environment, as for the real command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

IMPORTED_FROM: Final = "bench worker: connector from "
"""The first line of the worker's output, naming the ``connector`` package it runs (bench.ab
checks that an older revision's worker really runs that revision)."""


def main() -> int:
    import connector

    print(
        f"{IMPORTED_FROM}{Path(connector.__file__).parent.resolve()}", file=sys.stderr, flush=True
    )
    return _run()


def _run() -> int:
    from connector import cli

    try:
        from connector.worker import app
        from connector.worker.aggregates.install import install_agent_scores
    except ModuleNotFoundError:  # a revision from before `streams` was renamed `worker` (bench.ab)
        from connector.streams import app  # type: ignore[no-redef]
        from connector.streams.aggregates.install import (  # type: ignore[no-redef]
            install_agent_scores,
        )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aggregates", choices=["on", "off"], default="on")
    parser.add_argument(
        "--floor",
        nargs="?",
        const="faust",
        choices=["faust", "librdkafka"],
        help="Faust alone (bench.faust_floor), writing with Faust's producer or librdkafka",
    )
    args = parser.parse_args()
    installers = [i for i in app.INSTALLERS if i is not install_agent_scores]
    if args.aggregates == "on":
        installers.append(install_agent_scores)
    if args.floor:
        from bench.faust_floor import install_faust_floor, install_faust_read_floor

        floor = install_faust_floor if args.floor == "faust" else install_faust_read_floor
        installers = [floor, app.install_metrics_view]
    app.INSTALLERS[:] = installers
    return cli.main(["worker"])


if __name__ == "__main__":
    raise SystemExit(main())
