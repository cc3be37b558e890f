"""An installed wheel works outside the checkout: rule pack, templates and sample ship with it."""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from tests.conftest import REPO


def outer_site_dirs() -> list[str]:
    """The site-packages directories of the interpreter running the tests, where the dependencies are.

    Inside a virtualenv these are the virtualenv's own (``site.getsitepackages()`` then gives only
    those, plus the base interpreter's when the virtualenv was made with system site packages); with
    a system Python, the system's. The user site is included when this interpreter uses it.
    """
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


def make_venv_seeing_outer_packages(env_dir: Path) -> Path:
    """A virtualenv that can import the test interpreter's installed packages (the dependencies).

    ``system_site_packages=True`` would only expose the *base* interpreter's site-packages, not
    those of a virtualenv that pytest runs in. Instead, a ``.pth`` file in the new virtualenv lists
    the outer site-packages directories: each line is appended to ``sys.path`` after the
    virtualenv's own site-packages (so the wheel installed there comes first), and the ``.pth``
    files inside those directories are not run, so the editable install's import hook for the
    checkout is not installed in the new virtualenv.
    """
    venv.create(env_dir, system_site_packages=False, with_pip=True)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "_outer_site_packages.pth").write_text("".join(f"{d}\n" for d in outer_site_dirs()))
    return py


def test_wheel_runs_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True)
    wheel = next(dist.glob("bangban_audit-*.whl"))
    env_dir = tmp_path / "venv"
    py = make_venv_seeing_outer_packages(env_dir)
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
    assert rules.returncode == 0 and "REQ-TIME-LIMIT" in rules.stdout, rules.stderr
    demo = subprocess.run([str(audit), "demo"], cwd=work, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert (work / "demo_output" / "audit.duckdb").is_file() and (work / "demo_output" / "report.html").is_file()
    assert not (work / "audit.duckdb").exists()
