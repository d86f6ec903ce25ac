"""Finding Java: for the local services' JVMs, and as JAVA_HOME for PyFlink's gateway."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ticklake.errors import ServiceError


def java_home() -> str:
    """JAVA_HOME when it holds ``bin/java``, else the JDK of the ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return home
    java = shutil.which("java")
    if not java:
        raise ServiceError("Java was not found: install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless) "
                           "or set JAVA_HOME")
    return str(Path(java).resolve().parent.parent)


def java_binary() -> str:
    return str(Path(java_home()) / "bin" / "java")
