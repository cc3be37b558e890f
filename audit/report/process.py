"""The process view of the report (过程视图): per city, the most frequent variants and a
directly-follows map, for any step vocabulary.

A case's *trace* is its events in the order the rules judge them: by ``"time"``, ties in file
order (``seq``). Over the cases of the report's scope (``report_scope``) that have events:

- a *variant* is one exact step sequence; each has its cases, their share of the city's cases
  with events, and its *non-compliant* cases — those with an error finding of the run that no
  waiver covers (``report_findings``; the cases that 合规率 counts against). A variant is
  *deviating* (偏离) when every one of its cases is non-compliant: the sequence was never seen
  compliant. The `TOP_VARIANTS` most frequent are shown (ties: in the order of their step
  sequences, compared step by step by name), with what is left out;
- the map: nodes are steps with their number of events; an edge a → b counts the pairs of
  consecutive events (a then b) in a case, with the median waiting time
  workdays(date(a), date(b)) on the city's calendar as the run stored it (``run_calendar``,
  ``run_city_calendar``; working days in [date(a), date(b)), contract §2); start → a counts the
  cases whose first event is a, b → end those whose last event is b. A city with more than
  `MAX_STEPS` steps shows its `MAX_STEPS` most frequent (ties by name); edges are drawn only when
  both ends are shown and that occur in at least `MIN_EDGE_SHARE` of the city's cases; of those at
  most `MAX_EDGES`: the most frequent (ties: start first, end last, then by step names), leaving
  just enough room that every shown step with such an edge keeps its most frequent one. What is
  left out is counted.

All of it is set-based in DuckDB: one window pass gives each event its position and the next
event's step and working-day distance (a running working-day number per calendar day, so the
distance is a subtraction); the variants are grouped by an exact integer encoding of the sequence
(each position's step id in its own bit field) where it fits in 126 bits, by the list of step ids
otherwise. Python only sees the aggregates. `audit.report.processmap` draws the map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from audit.report.processmap import process_map
from audit.report.text import fmt_count, pct

TOP_VARIANTS = 10
MAX_STEPS = 15
MAX_EDGES = 30
MIN_EDGE_SHARE = 0.01   # an edge is drawn when it occurs in at least 1 % of the city's cases (as often)
HEAD_RUNS, TAIL_RUNS = 5, 2  # a variant of more runs than these (+1) is written with a gap
GAP = None                   # the gap's place in a written variant
KEY_BITS = 126               # the bits of a HUGEINT variant key used for step fields


@dataclass
class Variant:
    """One step sequence of a city."""

    rank: int
    steps: list[str]
    cases: int
    share: float                # of the city's cases with events
    noncompliant: int           # its cases with an unwaived error finding

    @property
    def deviating(self) -> bool:
        """Every case of the variant is non-compliant."""
        return self.noncompliant == self.cases

    def runs(self) -> list[tuple[str, int]]:
        """The sequence with repeats in a row folded: [(step, times in a row), …]."""
        out: list[tuple[str, int]] = []
        for step in self.steps:
            if out and out[-1][0] == step:
                out[-1] = (step, out[-1][1] + 1)
            else:
                out.append((step, 1))
        return out


@dataclass
class Step:
    """A step of a city's map: its events and the median of its positions in the traces."""

    name: str
    events: int
    median_position: float


@dataclass
class Edge:
    """a → b between consecutive events (`source` None: the start; `target` None: the end)."""

    source: str | None
    target: str | None
    count: int
    median_wait: float | None   # working days; None for start and end edges


@dataclass
class CityProcess:
    """The process view of one city."""

    city: str
    cases: int                  # cases in scope with events
    cases_without_events: int
    variants_total: int
    variants: list[Variant]     # the shown ones, most frequent first
    steps_total: int
    steps: list[Step]           # the shown ones, top to bottom (`map_order`)
    edges_total: int
    edges: list[Edge]           # the shown ones, most frequent first
    hidden_step_events: int = 0
    hidden_edge_count: int = 0  # transitions (and starts/ends) of the edges left out
    hidden_edge_max: int = 0    # the most frequent edge left out
    max_edge_count: int = 0     # of all edges (for stroke widths)
    edge_threshold: int = 1     # the fewest times a drawn edge occurs

    @property
    def hidden_variants(self) -> int:
        return self.variants_total - len(self.variants)

    @property
    def hidden_variant_cases(self) -> int:
        return self.cases - sum(v.cases for v in self.variants)

    @property
    def hidden_steps(self) -> int:
        return self.steps_total - len(self.steps)

    @property
    def hidden_edges(self) -> int:
        return self.edges_total - len(self.edges)


def process_view(con, run_id: int, cities: list[str]) -> list[CityProcess]:
    """The process view of each city of `cities` over the cases in ``report_scope`` (see module doc);
    ``report_findings`` must hold the scope's findings."""
    step_names, bits = _prepare(con, run_id)
    nodes = _by_city(con.execute("""
        SELECT c.city, a.sid, a.n, a.mpos
        FROM (SELECT ci, sid, count(*) AS n, median(pos) AS mpos FROM _pv_events GROUP BY ci, sid) a
        JOIN _pv_cities c USING (ci)""").fetchall())
    edges = _by_city(con.execute("""
        SELECT c.city, a.sid, a.nsid, a.n, a.wait FROM (
            SELECT ci, sid, nsid, count(*) AS n, median(wait) AS wait FROM _pv_events GROUP BY ci, sid, nsid
            UNION ALL
            SELECT ci, NULL, sid, count(*), NULL FROM _pv_events WHERE pos = 1 GROUP BY ci, sid) a
        JOIN _pv_cities c USING (ci)""").fetchall())
    variants, totals = _variants(con, step_names, bits)
    in_scope = dict(con.execute("SELECT city, count(*) FROM report_scope GROUP BY city").fetchall())
    out = []
    for city in cities:
        n_cases, n_variants = totals.get(city, (0, 0))
        view = CityProcess(city, n_cases, int(in_scope.get(city, 0)) - n_cases, n_variants, variants.get(city, []),
                           0, [], 0, [])
        _choose_map(view, [(step_names[s], n, p) for s, n, p in nodes.get(city, [])],
                    [(_name(step_names, a), _name(step_names, b), n, w) for a, b, n, w in edges.get(city, [])])
        out.append(view)
    _drop(con)
    return out


def _name(step_names: dict[int, str], sid: int | None) -> str | None:
    return None if sid is None else step_names[sid]


def _by_city(rows: list[tuple]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for city, *rest in rows:
        out.setdefault(city, []).append(tuple(rest))
    return out


def _prepare(con, run_id: int) -> tuple[dict[int, str], int]:
    """Temp tables ``_pv_steps`` (step → sid, by name), ``_pv_cities`` / ``_pv_scope`` (cities and
    cases of the scope numbered), ``_pv_days`` (city, day → working days before it on the city's
    calendar), ``_pv_events`` (each event of the scope with its position, the next event's step and
    the working days to it), ``_pv_cases`` (one row per case with events: length, variant key,
    non-compliant) and ``_pv_long`` (the cases too long for a key: their list of step ids).
    Returns sid → step and the bits of a step's field in a key."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pv_steps AS
        SELECT step, CAST(row_number() OVER (ORDER BY step) AS INTEGER) AS sid
        FROM (SELECT DISTINCT step FROM event_rows)""")  # every step: one out of scope does no harm
    names = dict((sid, step) for step, sid in con.execute("SELECT step, sid FROM _pv_steps").fetchall())
    # Cities and cases as integers (ci, ck): the events are sorted on integers and a timestamp, not
    # on two strings (ck only groups a case's events: its values carry no order). A case is
    # non-compliant with an error finding no waiver covers.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pv_cities AS
        SELECT city, CAST(row_number() OVER (ORDER BY city) AS INTEGER) AS ci
        FROM (SELECT DISTINCT city FROM report_scope)""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pv_scope AS
        SELECT s.city, s.case_id, c.ci, CAST(row_number() OVER () AS INTEGER) AS ck,
               b.case_id IS NOT NULL AS noncompliant
        FROM report_scope s JOIN _pv_cities c USING (city)
        LEFT JOIN (SELECT DISTINCT city, case_id FROM report_findings WHERE severity = 'error' AND NOT waived) b
               USING (city, case_id)""")
    # The running working-day number: wd_before(d) = working days before d on the city's calendar,
    # so that workdays(a, b) = wd_before(b) - wd_before(a) (working days in [a, b)).
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pv_days AS
        WITH cal AS (
            SELECT cal_key, d, sum(is_workday::INTEGER) OVER (PARTITION BY cal_key ORDER BY d)
                               - is_workday::INTEGER AS wd_before
            FROM run_calendar WHERE run_id = $run)
        SELECT c.ci, cal.d, cal.wd_before
        FROM _pv_cities c
        LEFT JOIN run_city_calendar k ON k.run_id = $run AND k.city = c.city
        JOIN cal ON cal.cal_key = coalesce(k.cal_key, 0)""", {"run": run_id})
    # One sort of the events: each event's position, the next event's step and the working days to it.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pv_events AS
        SELECT r.ci, r.ck, s.sid,
               CAST(row_number() OVER w AS INTEGER) AS pos,
               lead(s.sid) OVER w AS nsid,
               CAST(lead(d.wd_before) OVER w - d.wd_before AS INTEGER) AS wait
        FROM event_rows e JOIN _pv_scope r USING (city, case_id)
        JOIN _pv_steps s USING (step)
        LEFT JOIN _pv_days d ON d.ci = r.ci AND d.d = CAST(e."time" AS DATE)
        WINDOW w AS (PARTITION BY r.ck ORDER BY e."time", e.seq)""")
    bits = max(1, len(names).bit_length())  # sids are 1..len(names): never an all-zero field
    fits = KEY_BITS // bits
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pv_cases AS
        SELECT r.ci, r.noncompliant, c.*
        FROM (SELECT ck, count(*) AS len,
                     sum(CASE WHEN pos <= {fits} THEN CAST(sid AS HUGEINT) << CAST({bits} * (pos - 1) AS HUGEINT)
                         ELSE 0 END) AS key
              FROM _pv_events GROUP BY ck) c
        JOIN _pv_scope r USING (ck)""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pv_long AS
        SELECT ck, list(sid ORDER BY pos) AS sids FROM _pv_events
        SEMI JOIN (SELECT ck FROM _pv_cases WHERE len > {fits}) USING (ck)
        GROUP BY ck""")
    return names, bits


def _variants(con, names: dict[int, str], bits: int) -> tuple[dict[str, list[Variant]], dict[str, tuple[int, int]]]:
    """The `TOP_VARIANTS` most frequent variants of each city, and each city's (cases, variants)."""
    mask = (1 << bits) - 1
    # A variant's steps: its list of step ids, or its key taken apart field by field. Sids are
    # numbered in the order of the step names, so lists compare as the sequences of names do.
    rows = con.execute(f"""
        WITH keyed AS (
            SELECT c.ci, c.len, c.noncompliant, CASE WHEN l.sids IS NULL THEN c.key END AS key, l.sids
            FROM _pv_cases c LEFT JOIN _pv_long l USING (ck)),
        v AS (SELECT ci, key, sids, any_value(len) AS len, count(*) AS n, count(*) FILTER (WHERE noncompliant) AS bad
              FROM keyed GROUP BY ci, key, sids),
        seqs AS (SELECT ci, n, bad, coalesce(sids, list_transform(range(len), lambda i:
                        CAST((key >> CAST({bits} * i AS HUGEINT)) & {mask} AS INTEGER))) AS seq
                 FROM v),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY ci ORDER BY n DESC, seq) AS rank,
                          sum(n) OVER (PARTITION BY ci) AS city_cases, count(*) OVER (PARTITION BY ci) AS city_variants
                   FROM seqs)
        SELECT c.city, rank, seq, n, bad, city_cases, city_variants
        FROM ranked JOIN _pv_cities c USING (ci) WHERE rank <= {TOP_VARIANTS} ORDER BY c.city, rank""").fetchall()
    variants: dict[str, list[Variant]] = {}
    totals: dict[str, tuple[int, int]] = {}
    for city, rank, sequence, n, bad, city_cases, city_variants in rows:
        variants.setdefault(city, []).append(Variant(int(rank), [names[s] for s in sequence], int(n),
                                                     n / city_cases, int(bad)))
        totals[city] = (int(city_cases), int(city_variants))
    return variants, totals


def _choose_map(view: CityProcess, steps: list[tuple], edges: list[tuple]) -> None:
    """The steps and edges the map shows, and what it leaves out (`steps`: (name, events, median
    position); `edges`: (source, target, count, median wait))."""
    by_events = sorted(steps, key=lambda s: (-s[1], s[0]))
    shown = by_events[:MAX_STEPS]
    view.steps_total = len(steps)
    view.hidden_step_events = sum(int(s[1]) for s in by_events[MAX_STEPS:])
    names = {s[0] for s in shown}
    ordered = sorted(edges, key=lambda e: (-e[2], _end_key(e[0], True), _end_key(e[1], False)))
    view.edges_total = len(ordered)
    view.max_edge_count = max((int(e[2]) for e in ordered), default=0)
    view.edge_threshold = edge_threshold(view.cases)
    drawable = [e for e in ordered if (e[0] is None or e[0] in names) and (e[1] is None or e[1] in names)
                and e[2] >= view.edge_threshold]
    chosen = _connected_first(drawable)
    kept = {(e[0], e[1]) for e in chosen}
    left = [e for e in ordered if (e[0], e[1]) not in kept]
    view.edges = [Edge(a, b, int(n), None if w is None else float(w)) for a, b, n, w in chosen]
    view.hidden_edge_count = sum(int(e[2]) for e in left)
    view.hidden_edge_max = max((int(e[2]) for e in left), default=0)
    start = sorted(shown, key=lambda s: (s[2], -s[1], s[0]))
    order = map_order([s[0] for s in start], [e[:3] for e in edges])
    by_name = {s[0]: s for s in shown}
    view.steps = [Step(name, int(by_name[name][1]), float(by_name[name][2])) for name in order]


def _connected_first(drawable: list[tuple]) -> list[tuple]:
    """At most `MAX_EDGES` of `drawable` (most frequent first): the most frequent, leaving just
    enough room that every step with a drawable edge keeps its most frequent one (no step hangs
    loose while rarer edges are drawn); returned in `drawable`'s order."""
    best: dict[str, tuple] = {}
    for e in drawable:
        for step in (e[0], e[1]):
            if step is not None and step not in best:
                best[step] = e
    keep: list[tuple] = drawable
    for room in range(MAX_EDGES + 1):
        top = drawable[:MAX_EDGES - room]
        touched = {step for e in top for step in (e[0], e[1])}
        extra = {best[step] for step in best if step not in touched}
        if len(extra) <= room:
            keep = top + sorted(extra, key=drawable.index)
            break
    chosen = set(keep)
    return [e for e in drawable if e in chosen]


def edge_threshold(cases: int) -> int:
    """The fewest times an edge must occur to be drawn: `MIN_EDGE_SHARE` of the city's cases, at least 1."""
    return max(1, math.ceil(cases * MIN_EDGE_SHARE - 1e-9))


def map_order(names: list[str], edges: list[tuple[str | None, str | None, int]]) -> list[str]:
    """The steps top to bottom. From their order by median position, single steps are moved as
    long as a move lessens (first) the count of edges running upwards (a → b with b above a; loops
    aside), then the count-weighted length of all edges (the start above the first row, the end
    below the last); edges to steps not in `names` are ignored. The first best move wins: the same
    input gives the same order."""
    order = list(names)
    known = set(names)
    inner = [(a, b, n) for a, b, n in edges if a != b and (a is None or a in known) and (b is None or b in known)]

    def cost(seq: list[str]) -> tuple[int, int]:
        row = {name: i for i, name in enumerate(seq)}
        back = span = 0
        for a, b, n in inner:
            ra, rb = (-1 if a is None else row[a]), (len(seq) if b is None else row[b])
            back += n if rb < ra else 0
            span += n * abs(rb - ra)
        return back, span

    best = cost(order)
    for _ in range(4 * len(order) + 4):  # every pass improves or stops; bounded all the same
        found = None
        for i in range(len(order)):
            rest = order[:i] + order[i + 1:]
            for j in range(len(order)):
                if j == i:
                    continue
                seq = rest[:j] + [order[i]] + rest[j:]
                c = cost(seq)
                if c < (found[0] if found else best):
                    found = (c, seq)
        if not found:
            break
        best, order = found
    return order


def _end_key(name: str | None, source: bool) -> tuple[int, str]:
    """Edges of equal count in a fixed order: the start first, the end last, steps by name."""
    if name is None:
        return (0 if source else 2, "")
    return (1, name)


def _drop(con) -> None:
    for table in ("_pv_long", "_pv_cases", "_pv_events", "_pv_days", "_pv_scope", "_pv_cities", "_pv_steps"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def shown_runs(runs: list[tuple[str, int]]) -> list[tuple[str | None, int]]:
    """A long sequence of runs as the page writes it: the first `HEAD_RUNS`, a gap ((GAP, n): n
    events left out) and the last `TAIL_RUNS`; a short one whole."""
    if len(runs) <= HEAD_RUNS + TAIL_RUNS + 1:
        return runs
    middle = runs[HEAD_RUNS:-TAIL_RUNS]
    return runs[:HEAD_RUNS] + [(GAP, sum(times for _, times in middle))] + runs[-TAIL_RUNS:]


def variant_rows(view: CityProcess) -> list[dict]:
    """The variants of a city as the page lists them."""
    return [{"rank": v.rank, "steps": v.steps, "runs": shown_runs(v.runs()), "length": len(v.steps),
             "cases": fmt_count(v.cases), "share": pct(v.share), "noncompliant": fmt_count(v.noncompliant),
             "noncompliant_share": pct(v.noncompliant / v.cases) if v.cases else "", "deviating": v.deviating}
            for v in view.variants]


def section(con, run_id: int, cities: list[str]) -> dict:
    """The process view as the template shows it: per city the map, the variants and what each
    leaves out; the limits of the section."""
    views = []
    for i, view in enumerate(process_view(con, run_id, cities)):
        views.append({"city": view.city, "index": i + 1, "view": view, "variants": variant_rows(view),
                      "map": process_map(view, f"{view.city}的直接跟随图") if view.steps else None})
    return {"cities": views, "limits": {"steps": MAX_STEPS, "edges": MAX_EDGES, "variants": TOP_VARIANTS,
                                        "edge_share": f"{MIN_EDGE_SHARE:.0%}", "head": HEAD_RUNS, "tail": TAIL_RUNS}}
