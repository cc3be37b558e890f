"""Where the data that ships with the package lives: the default rule pack, templates, samples.

In an installed wheel they are the subpackages ``audit._pack`` (from ``rules/``),
``audit._templates`` (from ``reports/``) and ``audit._sample`` (from ``sample_data/``); run from a
checkout without installing, the top-level folders are used directly.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
_FOLDERS = {"audit._pack": "rules", "audit._templates": "reports", "audit._sample": "sample_data"}


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
