"""Pages rendered by a real browser: Debian's headless Chromium (infra/bootstrap.sh installs it)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image


def screenshot(page: Path, png: Path, width: int = 1100, height: int = 900) -> Image.Image:
    """``page`` as headless Chromium draws it in a window of ``width`` x ``height``, as RGB."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no chromium on PATH: infra/bootstrap.sh (make bootstrap) installs it")
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and png.is_file(), done.stderr
    return Image.open(png).convert("RGB")


def runs(flags: list[bool]) -> list[tuple[int, int]]:
    """The ``(first, last)`` indices of each run of True in ``flags``."""
    found, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            found.append((start, i - 1))
            start = None
    return found
