"""Helpers of the sample generator (`audit.sample.generate`): the step slots, flow-rule injection,
备注 notes and the 归档材料 strings. Vectorised over cases/events; nothing here prints."""

from __future__ import annotations

import numpy as np

from audit.sample import vocab as V

# Slots in nominal time order; a case uses the subset of its flow.
SLOTS = ["咨询", "申请", "受理", "需求分析", "委托", "承办", "承办", "中止", "续办", "中止", "续办",
         "移交", "办结", "资料归档", "回访"]
(S_CONSULT, S_APPLY, S_ACCEPT, S_ANALYSE, S_ENTRUST, S_UNDERTAKE, S_UNDERTAKE2, S_SUSP1,
 S_RESUME1, S_SUSP2, S_RESUME2, S_HANDOVER, S_CLOSE, S_ARCHIVE, S_FOLLOWUP) = range(len(SLOTS))


def swap(t, a, b, mask):
    """Put slot b before slot a (swap their times; if equal, b moves 7 minutes earlier)."""
    ta, tb = t[a].copy(), t[b].copy()
    t[a] = np.where(mask, tb, ta)
    t[b] = np.where(mask, np.where(ta == tb, ta - 7, ta), tb)


def inject_flow(g, v, t, present, n_susp, term, is_db):
    """Break the flow rules in the chosen cases (in place)."""
    rng, n = g.rng, t.shape[1]
    which = rng.integers(0, 3, n)
    for j, (a, b) in enumerate(((S_CONSULT, S_APPLY), (S_APPLY, S_ACCEPT), (S_ACCEPT, S_UNDERTAKE))):
        swap(t, a, b, v["FLOW-BB-ORDER"] & (which == j))
    for j, (a, b) in enumerate(((S_CONSULT, S_ANALYSE), (S_ANALYSE, S_ENTRUST))):
        swap(t, a, b, v["FLOW-DB-ORDER"] & (which % 2 == j))
    drop_entrust = v["FLOW-DB-ENTRUST"] & (rng.random(n) < 0.2)
    swap(t, S_ENTRUST, S_UNDERTAKE, v["FLOW-DB-ENTRUST"] & ~drop_entrust)
    present[S_ENTRUST] &= ~drop_entrust
    pick = rng.integers(0, 4, n)
    for j, s in enumerate((S_CONSULT, S_APPLY, S_ACCEPT, S_UNDERTAKE)):
        present[s] &= ~(v["FLOW-BB-STEPS"] & (pick == j))
    for j, s in enumerate((S_CONSULT, S_ANALYSE, S_ENTRUST, S_UNDERTAKE)):
        present[s] &= ~(v["FLOW-DB-STEPS"] & (pick == j))
    present[S_UNDERTAKE2] &= present[S_UNDERTAKE]
    # FLOW-DB-SUSPEND: a 中止 followed by work (last 续办 dropped), or a 续办 without 中止.
    sus = v["FLOW-DB-SUSPEND"]
    lost_resume = sus & (rng.random(n) < 0.6)
    present[S_RESUME2] &= ~(lost_resume & (n_susp == 2))
    present[S_RESUME1] &= ~(lost_resume & (n_susp == 1))
    present[S_SUSP1] &= ~(sus & ~lost_resume)
    # Realistic, compliant: a suspended 代办 case the applicant gives up (中止 -> 终止).
    give_up = term & is_db & (n_susp >= 1) & (rng.random(n) < 0.5)
    present[S_RESUME2] &= ~(give_up & (n_susp == 2))
    present[S_RESUME1] &= ~(give_up & (n_susp == 1))


def notes(g, slot_of, case_of, is_term, online, other, staff_names_arr):
    """A realistic 备注 per event (often empty)."""
    rng = g.rng
    note = np.empty(len(slot_of), dtype=object)
    slot_name = np.array(SLOTS)
    for name, texts in V.NOTES.items():
        if name == "咨询线上":
            continue
        sel = np.isin(slot_of, np.flatnonzero(slot_name == name))
        if name in ("办结", "终止"):
            sel = (slot_of == S_CLOSE) & (is_term if name == "终止" else ~is_term)
        if name == "咨询":
            on = online[case_of]
            for key, m in (("咨询", sel & ~on), ("咨询线上", sel & on)):
                opts = np.array(V.NOTES[key], dtype=object)
                note[m] = opts[rng.integers(0, len(opts), m.sum())]
            continue
        opts = np.array(texts, dtype=object)
        note[sel] = opts[rng.integers(0, len(opts), sel.sum())]
    ho = np.flatnonzero(slot_of == S_HANDOVER)
    note[ho] = ["工作调整，移交" + str(staff_names_arr[s]) for s in other[case_of[ho]]]
    return note


def materials(g, broken, archived, is_db, terminated, suspended, resumed, obj):
    """The 归档材料 string of each archived case (None before archiving)."""
    rng, n = g.rng, len(archived)
    dv = V.DOC_VARIANTS
    nvar = lambda name: (rng.random(n) * len(dv[name])).astype(np.int64) + 1  # noqa: E731
    first = np.where(is_db, nvar("委托书") + 10, nvar("受理单"))      # 1-3 受理单, 11-13 委托书
    close = np.where(terminated, nvar("终止单") + 10, nvar("办结单"))   # 1-3 办结单, 11-13 终止单
    susp = np.where(suspended, nvar("中止单"), 0)
    res = np.where(resumed, nvar("续办委托书"), 0)
    extras = (rng.random((len(V.EXTRA_DOCS), n)) < np.array([[0.7], [0.5], [0.5], [0.3], [0.15]]))
    company = np.isin(obj, list(V.COMPANY_OBJECTS))
    extras[1] &= ~company
    extras[2] &= company
    # Break: drop one required document (never 委托书 when 续办委托书 would still match it).
    which = rng.integers(0, 4, n)
    which = np.where((which == 0) & is_db & (res > 0), 1, which)
    which = np.where((which == 2) & (susp == 0), 1, which)
    which = np.where((which == 3) & (res == 0), 1, which)
    first = np.where(broken & (which == 0), 0, first)
    close = np.where(broken & (which == 1), 0, close)
    susp = np.where(broken & (which == 2), 0, susp)
    res = np.where(broken & (which == 3), 0, res)
    sep = (rng.random(n) * len(V.SEPARATORS)).astype(np.int64)
    ext_bits = (extras * (1 << np.arange(len(V.EXTRA_DOCS)))[:, None]).sum(axis=0)
    key = ((((first * 20 + close) * 4 + susp) * 4 + res) * 32 + ext_bits) * 8 + sep
    uniq, inv = np.unique(np.where(archived, key, -1), return_inverse=True)
    texts = np.array([materials_text(int(u)) for u in uniq], dtype=object)
    return texts[inv.ravel()]


def materials_text(key: int) -> str | None:
    if key < 0:
        return None
    key, sep = divmod(key, 8)
    key, ext = divmod(key, 32)
    key, res = divmod(key, 4)
    key, susp = divmod(key, 4)
    first, close = divmod(key, 20)
    dv = V.DOC_VARIANTS
    docs = []
    if first:
        docs.append(dv["委托书"][first - 11] if first > 10 else dv["受理单"][first - 1])
    docs += [d for i, d in enumerate(V.EXTRA_DOCS) if ext >> i & 1]
    if susp:
        docs.append(dv["中止单"][susp - 1])
    if res:
        docs.append(dv["续办委托书"][res - 1])
    if close:
        docs.append(dv["终止单"][close - 11] if close > 10 else dv["办结单"][close - 1])
    return V.SEPARATORS[sep].join(docs)
