"""Charts for the monthly report drawn on the server as SVG: no script, allowed by the CSP, crisp in print.

Only presentation attributes (fill, stroke, font-size), never a `style` attribute: the console's
content security policy refuses inline styles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup, escape

from ground.severity import Severity

CLASS_COLOURS = {Severity.ROUTINE: "#4e79a7", Severity.MAJOR: "#f28e2b", Severity.EMERGENCY: "#e15759"}
TARGET_COLOUR = "#222"
AXIS = "#888"


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-label="{escape(label)}" font-size="11" font-family="sans-serif">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: object, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}">{escape(str(text))}</text>'
    )


def trend(months: Sequence[dict[str, Any]], label: str) -> Markup:
    """Tickets per month, stacked by class, oldest month on the left."""
    width, height, left, bottom, top = 640, 200, 30, 24, 10
    plot_h = height - bottom - top
    most = max([m["tickets"]["total"] for m in months] + [1])
    step = (width - left) / max(len(months), 1)
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="{AXIS}"/>']
    body.append(_text(left - 4, top + 8, most, "end"))
    body.append(_text(left - 4, height - bottom, 0, "end"))
    for i, m in enumerate(months):
        x, y = left + i * step + step * 0.15, float(height - bottom)
        for severity in Severity:
            n = m["tickets"]["by_class"].get(severity.value, 0)
            h = plot_h * n / most
            if n:
                body.append(
                    f'<rect x="{x:.1f}" y="{y - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}"'
                    f' fill="{CLASS_COLOURS[severity]}">'
                    f"<title>{escape(m['month'])} {severity.value}: {n}</title></rect>"
                )
            y -= h
        if m["tickets"]["total"]:
            body.append(_text(x + step * 0.35, y - 2, m["tickets"]["total"], size=10))
        body.append(_text(x + step * 0.35, height - 8, m["month"][2:], size=10))
    return _svg(width, height, label, body)


def class_mix(by_class: dict[str, int], label: str, word: Callable[[str], str]) -> Markup:
    """One bar split by class in proportion, with each class's count."""
    width, height = 640, 52
    total = sum(by_class.values())
    body, x = [], 0.0
    for severity in Severity:
        n = by_class.get(severity.value, 0)
        if not total or not n:
            continue
        w = width * n / total
        body.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="26" fill="{CLASS_COLOURS[severity]}"/>')
        words = f"{word(severity.value)} {n} ({100 * n / total:.0f} %)"
        # A label starting near the right edge ends at it instead, so it is not cut off.
        if x > width * 0.75:
            body.append(_text(width - 2, 42, words, "end"))
        else:
            body.append(_text(x + 4, 42, words, "start"))
        x += w
    if not total:
        body.append(_text(width / 2, 20, "—"))
    return _svg(width, height, label, body)


def resolve_against_target(
    timing: Sequence[dict[str, Any]], label: str, word: Callable[[str], str]
) -> Markup:
    """Per class, the median and 90th-percentile time to resolve (hours) beside the resolve target."""
    width, row_h, left = 640, 34, 90
    height = row_h * len(timing) + 16
    longest = max(
        [t["resolve"]["target_s"] for t in timing] + [t["resolve"]["p90_s"] or 0 for t in timing] + [1]
    )
    scale = (width - left - 60) / longest
    body = []
    for i, t in enumerate(timing):
        r, y = t["resolve"], i * row_h + 4
        severity = Severity(t["class"])
        body.append(_text(left - 6, y + 15, word(severity.value), "end"))
        if r["p90_s"] is not None:
            body.append(
                f'<rect x="{left}" y="{y + 4}" width="{r["p90_s"] * scale:.1f}" height="16"'
                f' fill="{CLASS_COLOURS[severity]}" fill-opacity="0.35"/>'
            )
            body.append(
                f'<rect x="{left}" y="{y + 4}" width="{r["median_s"] * scale:.1f}" height="16"'
                f' fill="{CLASS_COLOURS[severity]}"/>'
            )
        target_x = left + r["target_s"] * scale
        body.append(
            f'<line x1="{target_x:.1f}" y1="{y}" x2="{target_x:.1f}" y2="{y + 24}" stroke="{TARGET_COLOUR}"'
            ' stroke-width="2" stroke-dasharray="4 2"/>'
        )
        body.append(_text(target_x + 4, y + 15, f"{r['target_s'] / 3600:g} h", "start", 10))
    return _svg(width, height, label, body)
