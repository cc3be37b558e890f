"""Where the data that ships with the package lives: the rule packs, templates, samples.

In an installed wheel they are the subpackages ``audit._pack`` (from ``rules/``), ``audit._packs``
(from ``packs/``: the other shipped packs), ``audit._bpic15`` (from ``examples/bpic15/pack/``),
``audit._templates`` (from ``reports/``) and ``audit._sample`` (from ``sample_data/``); run from a
checkout without installing, the top-level folders are used directly.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
_FOLDERS = {"audit._pack": "rules", "audit._packs": "packs", "audit._bpic15": "examples/bpic15/pack",
            "audit._templates": "reports", "audit._sample": "sample_data"}
# The shipped packs by name (`--pack NAME`): package and folder inside it.
PACK_NAMES = {"default": ("audit._pack", ""), "complaints": ("audit._packs", "complaints"),
              "online": ("audit._packs", "online"), "bpic15": ("audit._bpic15", "")}


def _locate(package: str) -> Path:
    # In a checkout the folders beside this package come first: an editable install made from
    # another checkout (a second git worktree) must not lend its rule pack or templates.
    folder = _CHECKOUT / _FOLDERS[package]
    if (_CHECKOUT / "pyproject.toml").is_file() and folder.is_dir():
        return folder
    try:
        return Path(str(importlib.resources.files(package)))
    except ModuleNotFoundError:
        return _CHECKOUT / _FOLDERS[package]


def pack_dir() -> Path:
    """The default rule pack (《帮办代办服务规范》)."""
    return _locate("audit._pack")


def templates_dir() -> Path:
    """The report templates."""
    return _locate("audit._templates")


def sample_dir() -> Path:
    """The bundled sample exports."""
    return _locate("audit._sample")


def named_pack_dir(name: str) -> Path:
    """The directory of the shipped pack called `name` (`PACK_NAMES`); KeyError if there is none."""
    package, sub = PACK_NAMES[name]
    return _locate(package) / sub if sub else _locate(package)


def resolve_pack(value: str | Path | None) -> Path | None:
    """A ``--pack`` value: a shipped pack's name (default, complaints, online, bpic15) or a directory;
    None stays None (the default pack). A value that is neither is a UsageError listing the names."""
    from audit.errors import UsageError

    if value is None:
        return None
    text = str(value)
    if text in PACK_NAMES:
        return named_pack_dir(text)
    path = Path(text)
    if path.is_dir():
        return path
    raise UsageError(f"--pack {text!r}: 既不是内置规则包的名称，也不是目录；内置规则包: {', '.join(PACK_NAMES)} "
                     "(或写规则包目录的路径)")
