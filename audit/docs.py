"""Keep generated parts of the README in step with the code (`python -m audit.docs`)."""

from __future__ import annotations

import re
from pathlib import Path

from audit.outputs.catalog import contract_markdown, markdown
from audit.rules.pack import load_pack

BEGIN, END = "<!-- rules:begin -->", "<!-- rules:end -->"
FACTS_BEGIN, FACTS_END = "<!-- facts:begin -->", "<!-- facts:end -->"


def rules_block() -> str:
    """The README's rule table, generated from the default pack."""
    return f"{BEGIN}\n{markdown(load_pack())}\n{END}"


def facts_block() -> str:
    """The README's contract for rule authors, generated from `audit.rules.contract`."""
    return f"{FACTS_BEGIN}\n{contract_markdown()}\n{FACTS_END}"


BLOCKS = ((BEGIN, END, rules_block), (FACTS_BEGIN, FACTS_END, facts_block))


def update_readme(path: Path) -> bool:
    """Rewrite the generated blocks of the README; True when one changed."""
    text = path.read_text(encoding="utf-8")
    new = text
    for begin, end, block in BLOCKS:
        new = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m, block=block: block(), new, flags=re.S)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    import sys

    changed = update_readme(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
    sys.stdout.write("README 生成部分已更新\n" if changed else "README 生成部分无变化\n")
