"""The limit options of ``microback serve``: one-line errors, sizes with units.

Moved from test_server_api.py, whose in-process tests are now tests/server/test_server.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serving import run_microback, stderr_lines


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-body-size", "ten", "'ten' is not a size in bytes"),
        ("--max-header-size", "0", "must be 1 or more, not 0"),
        ("--header-timeout", "0", "must be more than 0 seconds, not 0"),
        ("--max-header-count", "-3", "must be 1 or more, not -3"),
    ],
)
def test_bad_limit_options_are_one_line_errors(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    result = run_microback("serve", "app:app", option, value, cwd=tmp_path)

    assert result.returncode == 2
    assert message in stderr_lines(result)[-1]
    assert "Traceback" not in result.stderr


def test_size_options_take_suffixes() -> None:
    from microback.cli import build_parser

    args = build_parser().parse_args(["serve", "app:app", "--max-body-size", "2M"])

    assert args.max_body_size == 2 * 1024 * 1024
    assert build_parser().parse_args(["serve", "a:b", "--max-body-size", "0"]).max_body_size == 0
