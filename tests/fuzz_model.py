"""The model of the ingest fuzz test: the contract's rules (§1.2, §1.5; README 导入保证) applied
to what the generator wrote, without calling audit code. It says, for every record of every file of
an ingest, its fate (loaded, quarantined and why, duplicate), and what the tables then hold.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tests.fuzz_exports import EVENT_LAYOUTS, GenFile

# Quarantine reasons the model expects, by kind (contract §1.5; README 导入保证).
REASONS = {
    "blank": r"^空行", "footer": r"^表尾行", "empty_id": r"为空$", "sci_id": r"科学计数法",
    "unknown_step": r"不在环节词表中", "empty_step": r"为空$", "bad_time": r"无法识别$", "empty_time": r"为空$",
    "ragged_csv": r"^本行有 \d+ 个字段，表头只有 \d+ 列$", "ragged_xlsx": r"^本行在表头之外的列",
    "ambiguous": r"在多个地市 \(.+、.+\) 都有", "conflict": r"以后出现的一行为准",
}


@dataclass
class FileExpect:
    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: dict = field(default_factory=dict)     # line -> reason kind
    aside: int = 0
    fates: dict = field(default_factory=dict)           # line -> loaded | duplicate (for messages)

    def count(self, line: int, fate: str) -> None:
        self.fates[line] = fate
        if fate.startswith("loaded"):
            self.loaded += 1
        else:
            self.duplicates += 1


class Model:
    """The database as the contract has it after each ingest.

    Events (§1.2, §1.5, README 重复/替换): an event is (city, case_id, step, time, staff, note); the
    first row of an event in an ingest is the one that counts, later ones are duplicates. A case's
    events in an ingest replace the ones held for it, unless every one of them is held already (the
    same set, or a part of it): then all its rows are duplicates. A city-less event takes the city its case_id has in the database or in this
    ingest (case rows, events with a city); two or more cities: quarantined; none: it waits
    (counted loaded, kept per case_id the same way) and joins its case, when that becomes known in
    exactly one city, unless the case already holds the same event.
    Case rows: per case, the rows of an ingest fold field by field, the later row winning for the
    fields its file has; a row a later row contradicts is quarantined; the last of the others is
    loaded if the case changes, every other is a duplicate. A combined export's rows give their
    case's fields (last non-empty value) without being case rows of their own.
    """

    def __init__(self):
        self.ev: dict = {}        # (city, case_id) -> {event key: provenance (ingest, file, line)}
        self.wait: dict = {}      # case_id -> {event key: provenance}
        self.cases: dict = {}     # (city, case_id) -> (attributes, provenance)
        self.n_ingests = 0
        self.tags: set = set()

    def state(self):
        def canon(d):
            return sorted((repr(k), canon(v) if isinstance(v, dict) else repr(v)) for k, v in d.items())
        return canon(self.ev), canon(self.wait), canon(self.cases)

    def apply(self, files: list[GenFile], again: bool = False) -> tuple[list[FileExpect], bool]:
        """Ingest `files`; the expectation per file, and whether a joined waiting event met events
        of the same case in this ingest (see test_bug_reingest_drops_joined_events). `again`: the
        same files once more (what happens then is not counted as covered)."""
        tags, self.tags = self.tags, (set() if again else self.tags)
        try:
            return self._apply(files)
        finally:
            self.tags = tags

    def _apply(self, files: list[GenFile]) -> tuple[list[FileExpect], bool]:
        k = self.n_ingests
        self.n_ingests += 1
        exp = [FileExpect() for _ in files]
        evs, counted, folded = self._read(files, exp)
        resolved, waiting = self._place(exp, evs, counted, folded)
        self._merge_cases(k, exp, counted, folded)
        bumped = self._merge_events(k, exp, resolved, self.ev, "event")
        self._merge_events(k, exp, [(pos, None, x, key) for pos, x, key in waiting], self.wait, "waiting")
        return exp, self._join_waiting(bumped)

    def _read(self, files: list[GenFile], exp: list[FileExpect]):
        """Every record read; the rows with a key problem quarantined; the others as events,
        case rows, and (combined exports) each case's fields folded per file: the last non-empty
        value of each column, at the case's last row."""
        evs, counted, folded = [], [], {}
        for fid, f in enumerate(files):
            e = exp[fid]
            for r in f.records:
                if not r.is_record:
                    continue
                e.read += 1
                if r.defect:
                    e.quarantined[r.line] = r.defect
                elif f.layout in EVENT_LAYOUTS:
                    evs.append(((fid, r.line), r.city, r.case_id, r.key))
                    e.aside += r.aside
                    if f.layout == "combined":
                        fo = folded.setdefault((fid, r.city, r.case_id), {"line": 0, "attrs": dict.fromkeys(r.attrs)})
                        fo["line"] = max(fo["line"], r.line)
                        fo["attrs"].update({a: v for a, v in r.attrs.items() if v is not None})
                else:
                    counted.append(((fid, r.line), r.city, r.case_id, r.attrs, r))
        return evs, counted, folded

    def _place(self, exp, evs, counted, folded):
        """The city of city-less events (§1.2): (events with a city, events waiting for their case).
        Policy (the contract names case rows): events of a file with a city column place a
        case_id too, as the code does."""
        known = defaultdict(set)
        for c, x in list(self.cases) + list(self.ev):
            known[x].add(c)
        here = defaultdict(set)
        for c, x in [(c, x) for _, c, x, _, _ in counted] + [(c, x) for _, c, x in folded] + \
                [(c, x) for _, c, x, _ in evs if c is not None]:
            here[x].add(c)
        resolved, waiting = [], []
        for pos, c, x, key in evs:
            if c is None:
                cities = known[x] | here[x]
                if len(cities) > 1:
                    exp[pos[0]].quarantined[pos[1]] = "ambiguous"
                    self.tags.add("cityless:ambiguous")
                    continue
                if not cities:
                    waiting.append((pos, x, key))
                    self.tags.add("cityless:waiting")
                    continue
                c = next(iter(cities))
                self.tags.add("cityless:resolved-from-database" if known[x] else "cityless:resolved-same-ingest")
            resolved.append((pos, c, x, key))
        return resolved, waiting

    def _merge_cases(self, k, exp, counted, folded) -> None:
        """Per case, fold this ingest's rows; classify each case row; update the case."""
        rows = defaultdict(list)
        for pos, c, x, attrs, r in counted:
            rows[(c, x)].append((pos, attrs, r))
        for (fid, c, x), fo in folded.items():
            rows[(c, x)].append(((fid, fo["line"]), fo["attrs"], None))
        for cx, group in rows.items():
            group.sort(key=lambda g: g[0])
            # Policy: a row contradicted by a later row of another file of the ingest is
            # quarantined too (README says so for rows of one file: 以后出现的一行为准); an empty
            # or set-aside cell is a value (NULL) that replaces (README: 只替换新文件有列的字段).
            last = {a: v for _, attrs, _ in group for a, v in attrs.items()}
            conflicts = [g for g in group if g[2] is not None and any(last[a] != v for a, v in g[1].items())]
            rest = [g for g in group if g not in conflicts]
            merged_new = {a: v for _, attrs, _ in rest for a, v in attrs.items()}
            # The row loaded is the last case row of its own that no later row contradicts: a
            # combined export's rows give fields but are not case rows (the file counts events).
            own = [g for g in rest if g[2] is not None]
            final = own[-1][0] if own else rest[-1][0]
            old = self.cases.get(cx)
            same = old is not None and all(old[0].get(a) == v for a, v in merged_new.items())
            for pos, _attrs, r in group:
                if r is None:
                    continue
                e = exp[pos[0]]
                if any(g[0] == pos for g in conflicts):
                    e.quarantined[pos[1]] = "conflict"
                    later_in_file = any(q[0][0] == pos[0] and q[0] > pos for q in group)
                    self.tags.add("case:conflict-" + ("in-file" if later_in_file else "across-files"))
                    continue
                e.aside += r.aside          # policy: cells of duplicate rows are counted too
                if pos == final and not same:
                    e.count(pos[1], "loaded")
                    if old is not None:
                        self.tags.add("case:replaced-across-ingests")
                else:
                    e.count(pos[1], "duplicate")
                    self.tags.add("case:duplicate-" + ("across-ingests" if same and pos == final else
                                                       "in-file" if final[0] == pos[0] else "across-files"))
            if not same:
                attrs = dict(old[0]) if old else {}
                attrs.update(merged_new)
                self.cases[cx] = (attrs, (k, final[0], final[1]))

    def _merge_events(self, k, exp, items, store: dict, label: str) -> set:
        """Merge events (`label` event: into their cases; waiting: per case_id); the cases whose
        events this ingest set."""
        key_of = (lambda c, x: (c, x)) if label == "event" else (lambda c, x: x)
        first: dict = {}
        by_case = defaultdict(dict)
        for pos, c, x, key in sorted(items):
            if (c, x, key) in first:
                exp[pos[0]].count(pos[1], "duplicate")
                where = "in-file" if first[(c, x, key)][0] == pos[0] else "across-files"
                self.tags.add(f"{label}:duplicate-{where}")
                continue
            first[(c, x, key)] = pos
            by_case[key_of(c, x)][key] = pos
        bumped = set()
        for cx, reps in by_case.items():
            old = store.get(cx)
            # README: a case's events replace the ones held, unless every one of them is held
            # already (the same set, or a part of it: an earlier or partial file sent again).
            if old is not None and set(reps) <= set(old):
                for pos in reps.values():
                    exp[pos[0]].count(pos[1], "duplicate")
                self.tags.add(f"{label}:duplicate-across-ingests")
                continue
            if old is not None:
                self.tags.add(f"{label}:case-replaced")
            for pos in reps.values():
                exp[pos[0]].count(pos[1], "loaded" if label == "event" else "loaded (waiting)")
            store[cx] = {key: (k, pos[0], pos[1]) for key, pos in reps.items()}
            bumped.add(cx)
        if label == "event" and any(n > 1 for n in Counter((c, x, key[1]) for _, c, x, key in items).values()):
            self.tags.add("event:same-time-in-case")
        return bumped

    def _join_waiting(self, bumped: set) -> bool:
        """Waiting events join their case once its case_id is known in exactly one city. Policy:
        known in two cities, they keep waiting; an event the case already holds (the same row sent
        again with its case rows, loaded into the case by this ingest) is not added twice. True
        when an event joined a case whose events this ingest set."""
        joined_into_bumped = False
        for x in list(self.wait):
            cities = {c for c, y in list(self.cases) + list(self.ev) if y == x}
            if len(cities) != 1:
                continue
            c = cities.pop()
            target = self.ev.setdefault((c, x), {})
            for key, prov in self.wait.pop(x).items():
                if key in target:
                    self.tags.add("waiting:joined-duplicate")
                else:
                    target[key] = prov
                    self.tags.add("waiting:joined")
                    joined_into_bumped |= (c, x) in bumped
        return joined_into_bumped
