"""Flame graphs of py-spy's collapsed stacks (bench/flamegraph.py, bench/stacks.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import profile
from bench.flamegraph import MARGIN, colour, main, render_svg
from bench.stacks import function

SVG = "{http://www.w3.org/2000/svg}"


def _boxes(svg: str) -> list[tuple[str, dict[str, str], str | None]]:
    """``(tooltip, rect attributes, label)`` of every box, in document order."""
    found = []
    for group in ET.fromstring(svg).iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        rect = group.find(f"{SVG}rect")
        if title is None or rect is None:
            continue
        label = group.find(f"{SVG}text")
        found.append((title.text or "", rect.attrib, None if label is None else label.text))
    return found


def _box(svg: str, name: str) -> dict[str, str]:
    (rect,) = [rect for tip, rect, _ in _boxes(svg) if tip.startswith(f"{name} — ")]
    return rect


def test_the_output_is_an_svg_document() -> None:
    svg = render_svg("main (app/m.py:1);work (app/m.py:5) 2\n", "worker", width=800)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.attrib["width"] == "800"
    assert "worker — 2 samples" in "".join(root.itertext())


def test_box_widths_are_proportional_to_samples() -> None:
    svg = render_svg("a (m.py:1);b (m.py:2) 3\na (m.py:1);c (m.py:3) 1\n", "t", width=1200)
    a, b, c = (float(_box(svg, f"{n} (m.py)")["width"]) for n in "abc")
    assert a == pytest.approx(1200 - 2 * MARGIN)
    assert b / c == pytest.approx(3, rel=1e-3)
    assert b + c == pytest.approx(a, abs=0.02)
    # side by side on top of a, sorted by name
    b_x, c_x = (float(_box(svg, f"{n} (m.py)")["x"]) for n in "bc")
    assert b_x == pytest.approx(MARGIN)
    assert c_x == pytest.approx(b_x + b, abs=0.02)


def test_the_root_is_at_the_bottom() -> None:
    svg = render_svg("a (m.py:1);b (m.py:2) 1\n", "t")
    all_y, a_y, b_y = (float(_box(svg, n)["y"]) for n in ("all", "a (m.py)", "b (m.py)"))
    assert all_y > a_y > b_y


def test_identical_prefixes_are_merged_by_function() -> None:
    folded = "\n".join(
        [
            "main (app/m.py:1);a (app/m.py:10) 2",
            "main (app/m.py:2);b (app/m.py:20) 1",
            "main (app/m.py:1);a (app/m.py:11) 4",  # another line of a: the same box
            "other (app/m.py:30);a (app/m.py:10) 5",  # a under another caller: its own box
        ]
    )
    tips = [tip for tip, _, _ in _boxes(render_svg(folded, "t"))]
    assert sorted(tips) == sorted(
        [
            "all — 12 samples, 100.00 %",
            "main (app/m.py) — 7 samples, 58.33 %",
            "a (app/m.py) — 6 samples, 50.00 %",
            "b (app/m.py) — 1 sample, 8.33 %",
            "other (app/m.py) — 5 samples, 41.67 %",
            "a (app/m.py) — 5 samples, 41.67 %",
        ]
    )


def test_tooltips_carry_the_counts_and_shares() -> None:
    svg = render_svg("f (x.py:1);g (x.py:2) 3\nf (x.py:1) 1\n", "t")
    tips = {tip for tip, _, _ in _boxes(svg)}
    assert "f (x.py) — 4 samples, 100.00 %" in tips
    assert "g (x.py) — 3 samples, 75.00 %" in tips


def test_special_characters_are_escaped() -> None:
    folded = "<module> (app/a&b.py:1);<lambda> (app/a&b.py:2) 1\n"
    svg = render_svg(folded, 'title <with> & "quotes"')
    assert "&lt;lambda&gt; (app/a&amp;b.py)" in svg
    tips = [tip for tip, _, _ in _boxes(svg)]  # parsing undoes the escaping
    assert "<lambda> (app/a&b.py) — 1 sample, 100.00 %" in tips
    assert 'title <with> & "quotes" — 1 sample' in "".join(ET.fromstring(svg).itertext())


def test_characters_xml_cannot_hold_are_replaced() -> None:
    svg = render_svg("bad\x01name (m.py:1) 1\n", "t\x00")
    assert "bad\ufffdname (m.py) — 1 sample, 100.00 %" in [tip for tip, _, _ in _boxes(svg)]


@pytest.mark.parametrize("folded", ["", "\n", "not a stack\n", "f (m.py:1) many\n"])
def test_no_samples_give_a_valid_svg_saying_so(folded: str) -> None:
    svg = render_svg(folded, "idle")
    root = ET.fromstring(svg)
    assert _boxes(svg) == []
    assert "no samples" in "".join(root.itertext())


def test_boxes_under_half_a_pixel_are_left_out_with_their_callees() -> None:
    folded = "big (m.py:1) 10000\nsmall (m.py:2);callee (m.py:3) 1\n"
    names = [tip.split(" — ")[0] for tip, _, _ in _boxes(render_svg(folded, "t", width=1200))]
    assert names == ["all", "big (m.py)"]


def test_wide_boxes_are_labelled_and_long_labels_cut() -> None:
    long = "a_function_with_a_very_long_name_indeed"
    folded = f"top (m.py:1);{long} (m.py:2) 1\ntop (m.py:1);wide (m.py:3) 199\n"
    labels = {tip.split(" — ")[0]: label for tip, _, label in _boxes(render_svg(folded, "t"))}
    assert labels["wide (m.py)"] == "wide (m.py)"
    assert labels[f"{long} (m.py)"] is None  # 5.9 px: drawn, too narrow for text
    labels = {
        tip.split(" — ")[0]: label
        for tip, _, label in _boxes(render_svg(folded.replace("199", "9"), "t", width=400))
    }
    cut = labels[f"{long} (m.py)"]
    assert cut is not None and cut.endswith("…") and long.startswith(cut[:-1])


def test_colours_are_stable_and_tell_the_connector_from_libraries() -> None:
    ours = ["run (connector/worker/runner.py)", "encode (connector/avro/codec.py)"]
    theirs = ["poll (confluent_kafka/cimpl.py)", "_run_once (asyncio/base_events.py)"]
    for name in ours + theirs:
        assert colour(name) == colour(name)
    for name in ours:
        red, blue = int(colour(name)[1:3], 16), int(colour(name)[5:7], 16)
        assert blue > red
    for name in theirs:
        red, blue = int(colour(name)[1:3], 16), int(colour(name)[5:7], 16)
        assert red > blue
    svg = render_svg("run (/srv/app/connector/worker/runner.py:3) 1", "t")
    assert _box(svg, ours[0])["fill"] == colour(ours[0])


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("poll (/v/lib/site-packages/confluent_kafka/c.py:9)", "poll (confluent_kafka/c.py)"),
        ("send (/work/main/connector/worker/d.py:255)", "send (connector/worker/d.py)"),
        ("send (connector/worker/d.py:255)", "send (connector/worker/d.py)"),
        ("_run_once (/usr/lib/python3.11/asyncio/base.py:19)", "_run_once (asyncio/base.py)"),
        ("__init__ (<string>:3)", "__init__ (<string>)"),
    ],
)
def test_frames_are_named_by_function_and_short_path(frame: str, expected: str) -> None:
    assert function(frame) == expected


def test_the_command_line_renders_a_kept_profile(tmp_path: Path) -> None:
    folded = tmp_path / "worker.folded"
    folded.write_text("main (connector/cli.py:1);work (connector/worker/x.py:2) 2\n")
    out = tmp_path / "worker.svg"
    assert main([str(folded), str(out), "--title", "kept <run>"]) == 0
    svg = out.read_text(encoding="utf-8")
    assert "kept &lt;run&gt; — 2 samples" in svg
    assert len(_boxes(svg)) == 3
    assert main([str(folded), str(tmp_path / "default.svg")]) == 0
    assert "worker.folded — 2 samples" in (tmp_path / "default.svg").read_text(encoding="utf-8")


class _FinishedSampler:
    """Stands in for ``py-spy record``: already exited, its output written by the test."""

    def __init__(self, argv: list[str], **_: object) -> None:
        self.argv = argv

    def poll(self) -> int:
        return 0


def test_a_profile_writes_its_flame_graph_beside_the_folded_stacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profile.subprocess, "Popen", _FinishedSampler)
    sampled = profile.Profile(pid=1, folder=tmp_path, name="worker-drain")
    sampled.folded.write_text("main (connector/cli.py:1);work (connector/worker/x.py:2) 3\n")
    found = sampled.stop()
    assert found["samples"] == 3
    assert sampled.svg == tmp_path / "worker-drain.svg"
    svg = sampled.svg.read_text(encoding="utf-8")
    assert "py-spy: worker-drain — 3 samples" in svg
    assert "work (connector/worker/x.py) — 3 samples, 100.00 %" in [t for t, _, _ in _boxes(svg)]
