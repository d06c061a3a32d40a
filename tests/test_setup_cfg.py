"""setup.cfg holds only what belongs there: tools that do not read pyproject.toml.

flake8 and pycodestyle read setup.cfg (or tox.ini, .flake8) and never pyproject.toml; every
other tool the project uses reads pyproject.toml, and setuptools, mypy and pytest would read a
second copy of their settings from setup.cfg, so none of theirs may appear in it.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The sections of tools that read setup.cfg and cannot be configured in pyproject.toml.
ONLY_IN_SETUP_CFG = {"flake8", "pycodestyle"}


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser


def test_it_configures_only_tools_that_cannot_read_pyproject() -> None:
    sections = set(setup_cfg().sections())

    assert sections == ONLY_IN_SETUP_CFG


def test_the_line_length_is_ruffs() -> None:
    # tomllib is Python 3.11's; the project supports 3.10.
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    found = re.search(r"^\[tool\.ruff\]\nline-length = (\d+)$", pyproject, re.MULTILINE)
    assert found, "no line-length under [tool.ruff] in pyproject.toml"
    config = setup_cfg()

    for tool in sorted(ONLY_IN_SETUP_CFG):
        assert config.getint(tool, "max-line-length") == int(found.group(1)), tool


def test_flake8_and_pycodestyle_agree_with_the_code_as_ruff_leaves_it() -> None:
    for tool in ("flake8", "pycodestyle"):
        result = subprocess.run(
            [sys.executable, "-m", tool, "."], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{tool}:\n{result.stdout}{result.stderr}"
