"""Keep generated parts of the README in step with the code (`python -m audit.docs`)."""

from __future__ import annotations

import re
from pathlib import Path

from audit.pack import load_pack
from audit.rules_doc import markdown

BEGIN, END = "<!-- rules:begin -->", "<!-- rules:end -->"


def rules_block() -> str:
    """The README's rule table, generated from the default pack."""
    return f"{BEGIN}\n{markdown(load_pack())}\n{END}"


def update_readme(path: Path) -> bool:
    """Rewrite the rule table in the README; True when it changed."""
    text = path.read_text(encoding="utf-8")
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: rules_block(), text, flags=re.S)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    import sys

    changed = update_readme(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
    sys.stdout.write("README 规则表已更新\n" if changed else "README 规则表无变化\n")
