"""The ``zoom-connector`` command: one entry point, a subcommand per job.

Each subcommand imports what it needs when it runs, so ``zoom-connector validate`` does not pay for
importing Faust. Settings are read once here and passed down.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from connector.errors import ConnectorError
from connector.replay import arguments as replay_arguments
from connector.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose epilog may be computed only when its help is shown."""

    def __init__(self, *args: Any, epilog_when_shown: Callable[[], str] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self._epilog_when_shown = epilog_when_shown

    def format_help(self) -> str:
        if self._epilog_when_shown is not None:
            self.epilog = self._epilog_when_shown()
        return super().format_help()


def _example_names() -> str:
    from connector.spec import load_catalog

    names = "\n  ".join(load_catalog().event_types)
    return f"examples (--example EVENT), from specs/:\n  {names}"


def _cmd_source(args: argparse.Namespace, settings: Settings) -> int:
    from connector.source.server import serve

    return serve(settings)


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from connector.log_filters import install_worker_log_filters
    from connector.worker.command import run_worker

    install_worker_log_filters()

    return run_worker(settings)


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from connector.runner import run_all

    return run_all(settings)


def _cmd_kafka(args: argparse.Namespace, settings: Settings) -> int:
    from connector.kafka import local_broker

    return local_broker.main(args.action)


def _cmd_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from connector.avro import generator

    if args.action == "generate":
        return generator.generate_command()
    return generator.check_command()


def _cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    from connector.avro.validate import validate_command

    return validate_command(args.file, args.event, settings)


def _cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from connector.kafka.admin import create_topics_command

    return create_topics_command(settings)


def _cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from connector.source.sender import send_command

    return send_command(settings, file=args.file, example=args.example, url=args.url)


def _cmd_asyncapi(args: argparse.Namespace, settings: Settings) -> int:
    from connector import asyncapi

    if args.action == "generate":
        return asyncapi.generate_command()
    return asyncapi.check_command()


def _cmd_healthcheck(args: argparse.Namespace, settings: Settings) -> int:
    from connector.healthcheck import healthcheck_command

    return healthcheck_command(settings, args.role)


def _cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from connector.replay.arguments import replay_command

    return replay_command(args, settings)


def _cmd_dlq(args: argparse.Namespace, settings: Settings) -> int:
    from connector.replay.arguments import show_command

    return show_command(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoom-connector",
        description="Zoom contact-center webhooks into Kafka as typed Avro topics.",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING, ... [LOG_LEVEL]")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    sub.add_parser("source", help="run the HTTP webhook receiver").set_defaults(handler=_cmd_source)
    sub.add_parser("worker", help="run the Faust worker").set_defaults(handler=_cmd_worker)
    sub.add_parser(
        "run", help="source and worker together (starts the local broker when none is configured)"
    ).set_defaults(handler=_cmd_run)

    kafka = sub.add_parser("kafka", help="a local single-node Apache Kafka broker (KRaft)")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(handler=_cmd_kafka)

    schemas = sub.add_parser("schemas", help="generate or check schemas/avro/*.avsc from specs/")
    schemas.add_argument("action", choices=["generate", "check"])
    schemas.set_defaults(handler=_cmd_schemas)

    validate = sub.add_parser("validate", help="check one webhook body against its Avro schema")
    validate.add_argument("file", nargs="?", default="-", help="a JSON file, or - for stdin")
    validate.add_argument("--event", default=None, help="validate as this event type")
    validate.set_defaults(handler=_cmd_validate)

    topics = sub.add_parser("topics", help="create every topic the connector uses")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(handler=_cmd_topics)

    send = sub.add_parser(
        "send",
        help="sign a webhook body as Zoom does and POST it to a source",
        epilog_when_shown=_example_names,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = send.add_mutually_exclusive_group(required=True)
    what.add_argument("file", nargs="?", default=None, help="a JSON file, or - for stdin")
    what.add_argument("--example", default=None, metavar="EVENT", help="send the spec's example")
    send.add_argument("--url", default=None, help="the source's URL [http://localhost:SOURCE_PORT]")
    send.set_defaults(handler=_cmd_send)

    asyncapi = sub.add_parser(
        "asyncapi", help="generate or check asyncapi/zoom-connector.asyncapi.json (the topics)"
    )
    asyncapi.add_argument("action", choices=["generate", "check"])
    asyncapi.set_defaults(handler=_cmd_asyncapi)

    replay = sub.add_parser(
        "replay", help="copy dead letters (or raw records) back to the raw topic, filtered"
    )
    replay_arguments.add_replay_arguments(replay)
    replay.set_defaults(handler=_cmd_replay)

    dlq = sub.add_parser("dlq", help="look at the dead-letter topic")
    dlq_sub = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = dlq_sub.add_parser("show", help="print dead letters: when, why, where from")
    replay_arguments.add_show_arguments(show)
    show.set_defaults(handler=_cmd_dlq)

    health = sub.add_parser(
        "healthcheck", help="exit 0 when the local source and/or worker answer (containers)"
    )
    health.add_argument(
        "role",
        nargs="?",
        choices=["source", "worker", "run"],
        default=None,
        help="what to probe [the container's main command, else either]",
    )
    health.set_defaults(handler=_cmd_healthcheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=(args.log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except ConnectorError as exc:
        print(f"zoom-connector: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
