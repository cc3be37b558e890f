"""Every rule's pass and fail examples, run through the real engine (`pytest -k RULE-ID`)."""

from __future__ import annotations

import pytest

from audit.examples import run_examples
from audit.pack import load_pack

PACK = load_pack()


@pytest.mark.parametrize("rule", PACK.rules, ids=[r.id for r in PACK.rules])
def test_rule_examples(rule):
    outcomes = run_examples(rule, PACK)
    assert any(o.example.expect == "fail" for o in outcomes) and any(o.example.expect == "pass" for o in outcomes)
    wrong = [f"{o.example.expect}: {o.example.name} → {'flagged' if o.flagged else 'not flagged'} {o.messages}"
             for o in outcomes if not o.ok]
    assert not wrong, "\n".join(wrong)
    for o in outcomes:
        if o.flagged:
            assert all(m and isinstance(m, str) for m in o.messages)
