"""SQL text is never built from values: what ruff's S608 cannot see, this test holds.

S608 (pyproject.toml) flags formatted strings that start like a statement (``f"SELECT ...
{x}"``), but not a fragment such as ``SQL(f"{column} DESC")`` or ``SQL("a = '" + value + "'")``.
Here every call to ``SQL``, ``raw`` or ``execute_sql`` in the package and the examples must get
its SQL text as a literal or a name, never as an f-string with values, ``%``, ``+`` or
``.format``. Values go in the parameters; a name holding built text is the caller's to prove.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SOURCES = sorted([*(ROOT / "microback").rglob("*.py"), *(ROOT / "examples").rglob("*.py")])
SQL_CALLS = {"SQL", "raw", "execute_sql"}


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _built(text: ast.expr) -> bool:
    """Tell whether *text* formats values into a string."""
    if isinstance(text, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in text.values)
    if isinstance(text, ast.BinOp):
        return isinstance(text.op, ast.Mod | ast.Add)
    return (
        isinstance(text, ast.Call)
        and isinstance(text.func, ast.Attribute)
        and text.func.attr == "format"
    )


def formatted_sql(source: str) -> list[int]:
    """Lines of *source* that pass formatted text to SQL(), raw() or execute_sql()."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and _called(node) in SQL_CALLS
        and node.args
        and _built(node.args[0])
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sql_text_is_never_formatted(path: Path) -> None:
    assert formatted_sql(path.read_text(encoding="utf-8")) == []


def test_the_checker_sees_each_way_of_formatting() -> None:
    source = """
peewee.SQL(f"{column} DESC")
SQL("name = '" + name + "'")
Note.raw("SELECT * FROM note ORDER BY %s" % order)
db.execute_sql("DELETE FROM t WHERE id = {}".format(value))
SQL("1")
SQL(f"constant")
Note.raw("SELECT * FROM note WHERE id = %s", note_id)
db.execute_sql(sql, params)
"""
    assert formatted_sql(source) == [2, 3, 4, 5]


def test_ruff_refuses_formatted_sql_statements_in_the_package() -> None:
    # The project's own configuration, as `ruff check .` applies it to a file of the package.
    probe = 'def find(db, name):\n    return db.execute_sql(f"SELECT * FROM t WHERE n = {name}")\n'
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise"]
    done = subprocess.run(
        [*ruff, "--stdin-filename", "microback/probe.py", "-"],
        input=probe,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "microback/probe.py:2:27: S608 " in done.stdout
