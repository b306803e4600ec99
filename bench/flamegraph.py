"""Flame graphs of py-spy's collapsed stacks, as standalone SVG files (no script, no fonts).

A profile's ``.folded`` file says where the time went only line by line; a flame graph shows it
at a glance. The root is at the bottom and each row up is one call deeper; samples of the same
function under the same callers are merged into one box, as wide as its share of the samples.
Boxes are sorted by name (so two profiles line up), the connector's own code is blue and
libraries warm, and hovering a box shows its samples. ``bench.profile`` writes one beside each
``.folded`` file; ``python -m bench.flamegraph IN.folded OUT.svg [--title T]`` renders a kept one.
"""

from __future__ import annotations

import argparse
import colorsys
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from bench.stacks import is_connector, stacks

FRAME_HEIGHT = 16
FONT_SIZE = 12
CHAR_WIDTH = FONT_SIZE * 0.6
"""Of the monospace font the labels are set in, to cut them to their box."""
MARGIN = 10
HEADER = 44
"""Above the frames: the title and a line saying how to read the graph."""
MIN_WIDTH = 0.5
"""Boxes narrower than this (in px) are left out, and so are their callees."""

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class _Node:
    name: str
    samples: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def render_svg(folded: str, title: str, *, width: int = 1200) -> str:
    """The flame graph of ``folded`` (py-spy's raw format), ``width`` px wide."""
    if width <= 2 * MARGIN:
        raise ValueError(f"width {width} leaves no room for the frames")
    root = _tree(folded)
    if root.samples == 0:
        height = HEADER + MARGIN + FRAME_HEIGHT
        empty = _label(width / 2, HEADER + FONT_SIZE, "no samples", "middle")
        return _document(width, height, title, [empty], legend=False)
    boxes = list(_layout(root, (width - 2 * MARGIN) / root.samples))
    height = HEADER + (max(depth for _, depth, _, _ in boxes) + 1) * FRAME_HEIGHT + MARGIN
    parts = [
        _box(node, depth, MARGIN + x, height - MARGIN - (depth + 1) * FRAME_HEIGHT, w, root.samples)
        for node, depth, x, w in boxes
    ]
    return _document(width, height, f"{title} — {_samples(root.samples)}", parts)


def _tree(folded: str) -> _Node:
    root = _Node("all")
    for frames, count in stacks(folded):
        root.samples += count
        node = root
        for name in frames:
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = _Node(name)
            child.samples += count
            node = child
    return root


def _layout(root: _Node, scale: float) -> Iterator[tuple[_Node, int, float, float]]:
    """``(node, depth, x, width)`` of every box wide enough to draw, ``scale`` px per sample."""
    todo = [(root, 0, 0.0)]
    while todo:  # not recursive: a deep recursion in the profiled program is a deep stack here
        node, depth, x = todo.pop()
        width = node.samples * scale
        if width < MIN_WIDTH:
            continue
        yield node, depth, x, width
        for name in sorted(node.children):
            child = node.children[name]
            todo.append((child, depth + 1, x))
            x += child.samples * scale


def _box(node: _Node, depth: int, x: float, y: float, width: float, total: int) -> str:
    share = node.samples / total * 100
    tip = f"{node.name} — {_samples(node.samples)}, {share:.2f} %"
    fill = "#c8c8c8" if depth == 0 else colour(node.name)
    rect = (
        f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{FRAME_HEIGHT - 1}" '
        f'rx="2" fill="{fill}"/>'
    )
    fits = int((width - 6) / CHAR_WIDTH)
    label = ""
    if fits >= 3:
        text = node.name if len(node.name) <= fits else node.name[: fits - 1] + "…"
        label = _label(x + 3, y + FONT_SIZE, text)
    return f'<g class="f"><title>{_text(tip)}</title>{rect}{label}</g>'


def colour(function: str) -> str:
    """A fill for ``function``, the same in every graph: blues for the connector, warm for
    libraries, the shade from a hash of the name so neighbours differ."""
    digest = zlib.crc32(function.encode())
    if is_connector(function):
        hue, saturation = 195 + digest % 50, 0.55
    else:
        hue, saturation = digest % 50, 0.8
    lightness = 0.58 + (digest >> 8) % 16 / 100
    red, green, blue = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def _document(width: int, height: int, title: str, parts: list[str], *, legend: bool = True) -> str:
    head = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="{FONT_SIZE}">',
        "<style>.f:hover rect { stroke: #000; stroke-width: 0.5 }</style>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{width / 2}" y="20" font-size="15" text-anchor="middle">{_text(title)}</text>',
    ]
    if legend:
        head.append(
            f'<text x="{width / 2}" y="36" font-size="11" text-anchor="middle" fill="#555555">'
            "root at the bottom, callees above; blue: the connector, warm: libraries; "
            "hover a box for its samples</text>"
        )
    return "\n".join([*head, *parts, "</svg>"]) + "\n"


def _label(x: float, y: float, text: str, anchor: str = "start") -> str:
    align = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{x:.2f}" y="{y}"{align}>{_text(text)}</text>'


def _samples(n: int) -> str:
    return f"{n} sample" if n == 1 else f"{n} samples"


def _text(value: str) -> str:
    """``value`` as XML character data (characters XML cannot hold become U+FFFD)."""
    return escape(_NOT_XML.sub("\ufffd", value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flamegraph",
        description="Render py-spy's collapsed stacks (a .folded file) as a flame graph SVG.",
    )
    parser.add_argument("folded", type=Path, help="py-spy raw output (IN.folded)")
    parser.add_argument("svg", type=Path, help="where to write the SVG (OUT.svg)")
    parser.add_argument("--title", help="heading of the graph (default: the input's name)")
    parser.add_argument("--width", type=int, default=1200, help="in px (default: 1200)")
    args = parser.parse_args(argv)
    folded = args.folded.read_text(encoding="utf-8", errors="replace")
    try:
        svg = render_svg(folded, args.title or args.folded.name, width=args.width)
    except ValueError as exc:
        parser.error(str(exc))
    args.svg.write_text(svg, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
