"""An installed wheel works outside the checkout: rule pack, templates and sample ship with it."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from tests.conftest import REPO


def test_wheel_runs_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True)
    wheel = next(dist.glob("bangban_audit-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import audit, audit.resources as r; print(audit.__file__); print(r.pack_dir()); "
                            "print(r.templates_dir()); print(r.sample_dir())"],
                           cwd=work, check=True, capture_output=True, text=True).stdout.split()
    assert all(str(env_dir) in p for p in where), where
    assert (Path(where[1]) / "pack.yaml").is_file() and list((Path(where[1]) / "checks").glob("*.yaml"))
    assert list(Path(where[3]).glob("*.xlsx"))
    audit = env_dir / "bin" / "audit"
    rules = subprocess.run([str(audit), "rules"], cwd=work, capture_output=True, text=True)
    assert rules.returncode == 0 and "REQ-TIME-LIMIT" in rules.stdout
    demo = subprocess.run([str(audit), "demo"], cwd=work, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert (work / "audit.duckdb").is_file()
