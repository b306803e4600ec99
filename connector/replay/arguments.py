"""The command-line arguments of ``replay dlq|raw`` and ``dlq show``, and their checking.

Kept apart from the commands so that building the parser imports no Kafka client. A value the
commands cannot use (a time that is no time, a rate of 0, ``--reason`` on raw records, an unknown
reason) is refused before anything connects, with exit code 2 and a message saying which.
"""

from __future__ import annotations

import argparse

from connector.replay.selection import Selection, SelectionError, parse_time, split_values
from connector.settings import Settings
from connector.topics import TopicNames


def _time(text: str) -> int:
    try:
        return parse_time(text)
    except SelectionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _partition(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a partition number (0, 1, ...)")
    return int(text)


def _positive(kind: type[int] | type[float]) -> argparse._ActionType:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        return value

    return parse


def add_filters(parser: argparse.ArgumentParser) -> None:
    """``--reason``, ``--event``, ``--since``, ``--until``, ``--partition``, ``--from-topic``."""
    group = parser.add_argument_group("filters (all given must match)")
    group.add_argument(
        "--reason",
        action="append",
        metavar="REASON",
        help="dead-letter reason, e.g. unknown_enum_symbol (repeat or comma-separate for several)",
    )
    group.add_argument(
        "--event",
        action="append",
        metavar="TYPE",
        help="event type, e.g. quality_management.evaluation_completed (repeatable)",
    )
    group.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="at or after: ISO-8601 (UTC unless an offset is given) or epoch milliseconds;"
        " a dead letter's time is when the worker refused it, a raw record's when it was stored",
    )
    group.add_argument("--until", type=_time, metavar="TIME", help="before this time (as --since)")
    group.add_argument(
        "--partition",
        action="append",
        type=_partition,
        metavar="N",
        help="read only this partition of the topic read (repeatable)",
    )
    group.add_argument(
        "--from-topic",
        metavar="TOPIC",
        help="read this topic instead of the dead-letter (or raw) topic of TOPIC_PREFIX",
    )


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=["dlq", "raw"], help="what to replay")
    add_filters(parser)
    parser.add_argument(
        "--to", metavar="TOPIC", help="the topic to copy to [the raw topic of TOPIC_PREFIX]"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="count what would be copied, by reason and event type; write nothing",
    )
    parser.add_argument(
        "--rate", type=_positive(float), metavar="N", help="copy at most N records per second"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start over, ignoring the checkpoint of an interrupted run with the same arguments",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr [when stderr is a terminal]",
    )


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    add_filters(parser)
    parser.add_argument(
        "--limit", type=_positive(int), metavar="N", help="stop after N dead letters"
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep printing new dead letters until Ctrl-C"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line (counts go to stderr)"
    )
    parser.add_argument("--body", action="store_true", help="also print the raw body")


def selection_of(args: argparse.Namespace, *, dead_letters: bool) -> Selection:
    """The filters of ``args``; :class:`SelectionError` for values that cannot be used."""
    reasons = split_values(args.reason)
    if reasons and not dead_letters:
        raise SelectionError("--reason applies to dead letters only (replay dlq, dlq show)")
    return Selection(
        reasons=reasons,
        events=split_values(args.event),
        since_ms=args.since,
        until_ms=args.until,
        partitions=frozenset(args.partition or ()),
    )


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    """``zoom-connector replay dlq|raw``."""
    from connector.replay.copying import ReplayRequest, run_replay

    topics = TopicNames(settings.topic_prefix)
    selection = selection_of(args, dead_letters=args.kind == "dlq")
    source = args.from_topic or (topics.dlq if args.kind == "dlq" else topics.raw)
    request = ReplayRequest(
        kind=args.kind,
        source_topic=source,
        target_topic=args.to or topics.raw,
        selection=selection,
        dry_run=args.dry_run,
        rate=args.rate,
        restart=args.restart,
        progress=args.progress,
    )
    return run_replay(settings, request)


def show_command(args: argparse.Namespace, settings: Settings) -> int:
    """``zoom-connector dlq show``."""
    from connector.replay.show import ShowRequest, run_show

    request = ShowRequest(
        topic=args.from_topic or TopicNames(settings.topic_prefix).dlq,
        selection=selection_of(args, dead_letters=True),
        limit=args.limit,
        follow=args.follow,
        as_json=args.json,
        body=args.body,
    )
    return run_show(settings, request)
