"""The package's inline types and stubs pass ``mypy --strict``, with a typed usage file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_mypy_strict(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path), str(HERE.parent / "python" / "lockhog"), str(HERE / "typed_usage.py")],
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_stubs_and_marker_ship() -> None:
    import lockhog

    package = Path(lockhog.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_lockhog.pyi").exists()
