"""The directly-follows map of a city as inline SVG, laid out by hand (no graph-drawing program).

Layout: one step per row, top to bottom (`audit.report.process.map_order`: by the median of their
positions in the traces, then moved while that puts fewer edges upwards), between a 开始 row and a
结束 row. An edge from a row to the next is the straight spine down the middle, its label beside it
in the gap between the two boxes. Every other forward edge is drawn right of the boxes, every back edge (and every
loop a → a) left of them, each in a lane of its own: lanes are shared only by edges whose rows do
not overlap, shorter edges nearer the boxes, so nested edges do not cross. An edge leaves and
enters a box at its own port, ordered so that its lane's edges do not cross there either.

Labels ("n · 中位 x 个工作日") sit beside their lane, where they touch no box and no label already
placed (sizes measured in the page's font, `audit.report.fonts.text_width`) and cross the fewest
other lines, near the middle of the edge, preferably on its outer side; a label with no free place
along its lane is set beyond everything at that height, joined to its lane by a dotted leader.
Labels are therefore never on top of one another; they carry a white halo where a line passes
under them.

Black-and-white readable: stroke width grows with the edge's count, back edges are dashed, start
and end edges grey, boxes darker the more events their step has. Output is reproducible: no ids,
coordinates rounded to 0.1, elements in a fixed order; steps and counts are also in ``data-``
attributes for tests and scripts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from audit.report.fonts import text_width
from audit.report.text import fmt_count

if TYPE_CHECKING:
    from audit.report.process import CityProcess, Edge

NODE_FONT = 10.0
COUNT_FONT = 9.0
LABEL_FONT = 9.0
NODE_H = 16.0
PITCH = 28.0            # row to row; the gap (PITCH - NODE_H) holds a spine label
LANE_GAP = 11.0
LABEL_H = LABEL_FONT * 1.35
MARGIN = 6.0
NAME_MAX = 150.0        # a longer step name is shortened (the full name in the box's tooltip)
INK, GREY = "#222", "#8a8a8a"


def fmt_days(value: float | None) -> str:
    """A median number of working days: '2', '1.5'; '—' when there is none."""
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def edge_label(edge: Edge) -> str:
    """An edge's label on the map: 'n · 中位 x 个工作日' (start and end edges: 'n')."""
    if edge.source is None or edge.target is None:
        return fmt_count(edge.count)
    return f"{fmt_count(edge.count)} · 中位 {fmt_days(edge.median_wait)} 个工作日"


@dataclass
class Box:
    """An axis-aligned rectangle (a label, a box; a line segment when flat)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def hits(self, other: Box) -> bool:
        """The two overlap (touching edges do not count)."""
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def crosses(self, seg: Box) -> bool:
        """A line segment (`seg`, flat) passes through this box."""
        return self.x0 <= seg.x1 and seg.x0 <= self.x1 and self.y0 <= seg.y1 and seg.y0 <= self.y1


def _segment(x0: float, y0: float, x1: float, y1: float) -> Box:
    return Box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


@dataclass
class Arc:
    """An edge drawn beside the boxes: right (downwards) or left (upwards, and loops)."""

    edge: Edge
    side: str               # "right" | "left"
    src: int                # rows
    dst: int
    lane: int = 0
    ports: dict[str, float] = field(default_factory=dict)  # "out" / "in" → y
    lane_x: float = 0.0
    x_from: float = 0.0     # where it leaves the source box and enters the target box
    x_to: float = 0.0

    @property
    def lo(self) -> int:
        return min(self.src, self.dst)

    @property
    def hi(self) -> int:
        return max(self.src, self.dst)

    @property
    def sign(self) -> int:
        return 1 if self.side == "right" else -1

    def segments(self) -> list[Box]:
        """Its three straight pieces: out to the lane, along it, in to the target."""
        y_out, y_in = self.ports["out"], self.ports["in"]
        return [_segment(self.x_from, y_out, self.lane_x, y_out), _segment(self.lane_x, y_out, self.lane_x, y_in),
                _segment(self.lane_x, y_in, self.x_to, y_in)]


def _f(v: float) -> str:
    text = f"{v:.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def process_map(view: CityProcess, label: str) -> Markup:
    """The map of `view` as an ``<svg class="process-map">`` element (`label`: its accessible name)."""
    return _Layout(view).svg(label)


class _Layout:
    """Rows, lanes, ports and label places of one map (see the module doc)."""

    def __init__(self, view: CityProcess):
        self.view = view
        self.rows = {s.name: i + 1 for i, s in enumerate(view.steps)}
        self.end_row = len(view.steps) + 1
        self.names = {s.name: _short(s.name) for s in view.steps}
        count_w = max((text_width(f"{s.events:,}", COUNT_FONT) for s in view.steps), default=0)
        self.node_w = max([70.0] + [text_width(self.names[s.name], NODE_FONT) + 6 + count_w + 14
                                    for s in view.steps])
        self.pill_w = text_width("开始", NODE_FONT) + 16
        self.stroke = _stroke_scale(view.max_edge_count)
        self.spine: list[tuple[Edge, int]] = []
        self.arcs: list[Arc] = []
        for edge in view.edges:
            src, dst = self._row(edge.source, True), self._row(edge.target, False)
            if dst == src + 1:
                self.spine.append((edge, src))
            else:
                self.arcs.append(Arc(edge, "right" if dst > src else "left", src, dst))
        spine_w = max((text_width(edge_label(e), LABEL_FONT) for e, _ in self.spine), default=0)
        right0, left0 = max(self.node_w / 2, 5 + spine_w) + 10, -self.node_w / 2 - 10
        self.lanes0 = (right0, left0)
        for side in ("right", "left"):
            _assign_lanes([a for a in self.arcs if a.side == side])
        _assign_ports(self.arcs, self.y)
        for arc in self.arcs:
            arc.lane_x = right0 + arc.lane * LANE_GAP if arc.sign > 0 else left0 - arc.lane * LANE_GAP
            arc.x_from, arc.x_to = arc.sign * self._half(arc.src), arc.sign * self._half(arc.dst)

    def _row(self, name: str | None, is_source: bool) -> int:
        if name is None:
            return 0 if is_source else self.end_row
        return self.rows[name]

    def _half(self, row: int) -> float:
        return self.pill_w / 2 if row in (0, self.end_row) else self.node_w / 2

    @staticmethod
    def y(row: int) -> float:
        return row * PITCH

    def svg(self, label: str) -> str:
        """The whole map: edges, then boxes, then labels on top."""
        edges, labels, placed = [], [], []
        segments = [seg for arc in self.arcs for seg in arc.segments()]
        for edge, src in self.spine:
            y0, y1 = self.y(src) + NODE_H / 2, self.y(src + 1) - NODE_H / 2
            width = self.stroke(edge.count)
            edges.append(_edge_group(edge, f"M0 {_f(y0)}V{_f(y1 - _head_len(width))}", width, False,
                                     _arrow(0, y1, "down", width)))
            segments.append(_segment(0, y0, 0, y1))
            text = edge_label(edge)
            placed.append(Box(5, (y0 + y1) / 2 - LABEL_H / 2, 5 + text_width(text, LABEL_FONT) + 2,
                              (y0 + y1) / 2 + LABEL_H / 2))
            labels.append(_label(edge, 5, (y0 + y1) / 2, "start", text))
        for row in range(self.end_row + 1):
            placed.append(Box(-self._half(row), self.y(row) - NODE_H / 2, self._half(row), self.y(row) + NODE_H / 2))
        for arc in self.arcs:
            width = self.stroke(arc.edge.count)
            path = _arc_path(arc.x_from, arc.ports["out"], arc.lane_x, arc.ports["in"], arc.x_to, arc.sign, width)
            edges.append(_edge_group(arc.edge, path, width, arc.side == "left",
                                     _arrow(arc.x_to, arc.ports["in"], "left" if arc.sign > 0 else "right", width)))
        # Labels of the shorter arcs first: they have the least room to move.
        for arc in sorted(self.arcs, key=lambda a: (a.hi - a.lo, a.lo, a.side, a.lane)):
            text = edge_label(arc.edge)
            own = arc.segments()[1]
            others = [s for s in segments if s is not own]
            box, sign, leader = _place(placed, others, arc, text_width(text, LABEL_FONT) + 2,
                                       self.lanes0[0] if arc.sign > 0 else self.lanes0[1])
            placed.append(box)
            x_text = box.x0 + 1 if sign > 0 else box.x1 - 1
            mid = (box.y0 + box.y1) / 2
            if leader:
                labels.append(f'<path class="pm-leader" d="M{_f(arc.lane_x)} {_f(mid)}H{_f(x_text - sign * 2)}" '
                              f'stroke="{GREY}" stroke-width="0.6" stroke-dasharray="1 1.5" fill="none"/>')
            labels.append(_label(arc.edge, x_text, mid, "start" if sign > 0 else "end", text))
        nodes = [_pill(0, self.y(0), self.pill_w, "开始", "start"),
                 _pill(0, self.y(self.end_row), self.pill_w, "结束", "end")]
        max_events = max((s.events for s in self.view.steps), default=1)
        for s in self.view.steps:
            nodes.append(_node(s.name, self.names[s.name], s.events, self.y(self.rows[s.name]), self.node_w, max_events))
        extent = placed + segments
        x_min = min(b.x0 for b in extent) - MARGIN
        x_max = max(b.x1 for b in extent) + MARGIN
        y_min, y_max = -NODE_H / 2 - MARGIN, self.y(self.end_row) + NODE_H / 2 + MARGIN
        w, h = x_max - x_min, y_max - y_min
        return Markup(f'<svg class="process-map" xmlns="http://www.w3.org/2000/svg" role="img" '
                      f'aria-label="{escape(label)}" width="{_f(w)}" height="{_f(h)}" '
                      f'viewBox="{_f(x_min)} {_f(y_min)} {_f(w)} {_f(h)}">'
                      + "".join(edges) + "".join(nodes) + "".join(labels) + "</svg>")


def _short(name: str) -> str:
    """`name`, or as much of it as fits in `NAME_MAX` followed by "…"."""
    if text_width(name, NODE_FONT) <= NAME_MAX:
        return name
    while name and text_width(name + "…", NODE_FONT) > NAME_MAX:
        name = name[:-1]
    return name + "…"


def _stroke_scale(max_count: int):
    def width(count: int) -> float:
        return 0.8 + 2.7 * math.sqrt(count / max_count) if max_count else 0.8
    return width


def _head_len(width: float) -> float:
    return 4.5 + width


def _arrow(x: float, y: float, direction: str, width: float) -> str:
    """A filled arrowhead whose tip is at (x, y)."""
    length, half = _head_len(width), 2.4 + width * 0.6
    if direction == "down":
        pts = [(x, y), (x - half, y - length), (x + half, y - length)]
    elif direction == "left":
        pts = [(x, y), (x + length, y - half), (x + length, y + half)]
    else:  # right
        pts = [(x, y), (x - length, y - half), (x - length, y + half)]
    return '<path class="pm-head" stroke="none" d="M' + "L".join(f"{_f(a)} {_f(b)}" for a, b in pts) + 'Z"/>'


def _arc_path(x_from, y_out, lane_x, y_in, x_to, sign, width) -> str:
    """Out of the source box to the lane, along it, into the target box (corners rounded)."""
    r = min(5.0, abs(y_in - y_out) / 2)
    dy = 1 if y_in > y_out else -1
    return (f"M{_f(x_from)} {_f(y_out)}H{_f(lane_x - sign * r)}"
            f"Q{_f(lane_x)} {_f(y_out)} {_f(lane_x)} {_f(y_out + dy * r)}"
            f"V{_f(y_in - dy * r)}Q{_f(lane_x)} {_f(y_in)} {_f(lane_x - sign * r)} {_f(y_in)}"
            f"H{_f(x_to + sign * _head_len(width))}")


def _edge_group(edge: Edge, d: str, width: float, dashed: bool, head: str) -> str:
    """An edge: its line (dashed: a back edge) and arrowhead, grey for start and end edges."""
    colour = GREY if edge.source is None or edge.target is None else INK
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return (f'<g class="pm-edge"{_edge_attrs(edge)} stroke="{colour}" fill="{colour}">'
            f'<path d="{d}" fill="none" stroke-width="{_f(width)}"{dash}/>{head}</g>')


def _edge_attrs(edge: Edge) -> str:
    out = ' data-start="1"' if edge.source is None else f' data-source="{escape(edge.source)}"'
    out += ' data-end="1"' if edge.target is None else f' data-target="{escape(edge.target)}"'
    out += f' data-count="{edge.count}"'
    if edge.source is not None and edge.target is not None and edge.median_wait is not None:
        out += f' data-median="{_f(edge.median_wait)}"'
    return out


def _label(edge: Edge, x: float, y: float, anchor: str, text: str) -> str:
    return (f'<text class="pm-label"{_edge_attrs(edge)} x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" '
            f'dominant-baseline="central" font-size="{_f(LABEL_FONT)}" fill="{INK}" stroke="#fff" '
            f'stroke-width="3" stroke-linejoin="round" paint-order="stroke">{escape(text)}</text>')


def _node(name: str, short: str, events: int, y: float, width: float, max_events: int) -> str:
    level = 255 - round(45 * events / max_events) if max_events else 255
    fill = f"#{level:02x}{level:02x}{level:02x}"
    x0 = -width / 2
    return (f'<g class="pm-node" data-step="{escape(name)}" data-events="{events}">'
            f'<title>{escape(name)}：{events:,} 个事件</title>'
            f'<rect x="{_f(x0)}" y="{_f(y - NODE_H / 2)}" width="{_f(width)}" height="{_f(NODE_H)}" rx="3" '
            f'fill="{fill}" stroke="#333" stroke-width="1"/>'
            f'<text x="{_f(x0 + 7)}" y="{_f(y)}" dominant-baseline="central" font-size="{_f(NODE_FONT)}" '
            f'fill="{INK}">{escape(short)}</text>'
            f'<text class="pm-events" x="{_f(-x0 - 7)}" y="{_f(y)}" text-anchor="end" dominant-baseline="central" '
            f'font-size="{_f(COUNT_FONT)}" fill="#444">{events:,}</text></g>')


def _pill(x: float, y: float, width: float, text: str, kind: str) -> str:
    return (f'<g class="pm-{kind}"><rect x="{_f(x - width / 2)}" y="{_f(y - NODE_H / 2)}" width="{_f(width)}" '
            f'height="{_f(NODE_H)}" rx="{_f(NODE_H / 2)}" fill="#444"/>'
            f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="middle" dominant-baseline="central" '
            f'font-size="{_f(NODE_FONT)}" fill="#fff">{text}</text></g>')


def _assign_lanes(arcs: list[Arc]) -> None:
    """Each arc the innermost lane free over its rows (closed intervals: arcs meeting at a row
    take different lanes); shorter arcs first."""
    lanes: list[list[Arc]] = []
    for arc in sorted(arcs, key=lambda a: (a.hi - a.lo, a.lo, a.hi, -a.edge.count)):
        for i, members in enumerate(lanes):
            if all(arc.hi < m.lo or m.hi < arc.lo for m in members):
                arc.lane = i
                members.append(arc)
                break
        else:
            arc.lane = len(lanes)
            lanes.append([arc])


def _assign_ports(arcs: list[Arc], y_of) -> None:
    """Where each arc leaves and enters its boxes. On a side, from the top: the ends coming from
    above, inner lanes first, then those going down, outer lanes first (mirrored on the left,
    where edges go up): no two edges of one side cross at a box."""
    ends: dict[tuple[int, str], list[tuple[tuple, Arc, str]]] = {}
    for arc in arcs:
        for role, row in (("out", arc.src), ("in", arc.dst)):
            if arc.side == "right":
                group, order = (0, arc.lane) if role == "in" else (1, -arc.lane)
            else:
                group, order = (0, arc.lane) if role == "out" else (1, -arc.lane)
            ends.setdefault((row, arc.side), []).append(((group, order, arc.lo, arc.hi), arc, role))
    span = NODE_H - 6
    for (row, _), items in sorted(ends.items()):
        items.sort(key=lambda t: t[0])
        k = len(items)
        for i, (_, arc, role) in enumerate(items):
            arc.ports[role] = y_of(row) + (0.0 if k == 1 else -span / 2 + i * span / (k - 1))


def _place(placed: list[Box], segments: list[Box], arc: Arc, width: float, inner_limit: float) -> tuple[Box, int, bool]:
    """A place for the label of `arc` (`width` wide): beside its lane, touching no box in `placed`;
    of those, the one crossing the fewest `segments`, then nearest the middle of the lane, the
    outer side before the inner (which must stay outside `inner_limit`, the x where the lanes of
    its side begin, clear of the boxes and the spine's labels). None free: beyond every box at the
    middle's height, with a leader (the third value). Returns the box and the side (1: right of
    the lane, -1: left)."""
    y_top, y_bottom = sorted((arc.ports["out"], arc.ports["in"]))
    mid = (y_top + y_bottom) / 2
    room = max(0.0, (y_bottom - y_top - LABEL_H) / 2)
    offsets = [0.0]
    k = 1
    while k * 3.0 <= room:
        offsets += [k * 3.0, -k * 3.0]
        k += 1
    best = None
    for inner, sign in ((0, arc.sign), (1, -arc.sign)):
        for dy in offsets:
            box = _beside(arc.lane_x, sign, mid + dy, width)
            if (box.x0 < inner_limit if arc.sign > 0 else box.x1 > inner_limit) or any(box.hits(b) for b in placed):
                continue
            score = (sum(box.crosses(s) for s in segments), inner, abs(dy))
            if best is None or score < best[0]:
                best = (score, box, sign)
    if best is not None:
        return best[1], best[2], False
    band = [b for b in placed if b.y0 < mid + LABEL_H / 2 and mid - LABEL_H / 2 < b.y1]
    if arc.sign > 0:
        x = max([arc.lane_x] + [b.x1 + 1 for b in band])
    else:
        x = min([arc.lane_x] + [b.x0 - 1 for b in band])
    return _beside(x, arc.sign, mid, width), arc.sign, True


def _beside(x: float, sign: int, y: float, width: float) -> Box:
    """A label box of `width` starting 3 px right (sign 1) or left (-1) of x, centred on y."""
    if sign > 0:
        return Box(x + 3, y - LABEL_H / 2, x + 3 + width, y + LABEL_H / 2)
    return Box(x - 3 - width, y - LABEL_H / 2, x - 3, y + LABEL_H / 2)
