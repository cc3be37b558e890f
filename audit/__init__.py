"""bangban-audit: audit 帮办代办 case logs against 《帮办代办服务规范》 (Shaanxi)."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("bangban-audit")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.0.0+checkout"
