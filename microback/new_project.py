"""``microback new NAME``: write a project that runs and passes its own tests at once.

The project is rendered from ``microback/skeleton/``, package data shipped in the wheel. Its
files are the project's, with three kinds of marks:

- ``__project__`` (in paths and text) is the project's name, which is also its Python
  package's; ``__PROJECT__`` is the name in capitals (its environment variables' prefix);
- ``__default_database_url__`` and ``__microback_requirement__`` depend on the options;
- a line ``#% if FLAG`` (``html``, ``postgresql``), ``#% else`` or ``#% end`` keeps or drops
  the lines up to the next mark.

Python files end in ``.py-tpl`` there, so linters, type checkers and pytest leave them alone
until they are written out; a ``dot-`` prefix becomes ``.`` (package data skips dot files).
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from .command import CommandError

__all__ = ["ProjectOptions", "check_name", "create_project", "render"]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_DIRECTIVE = re.compile(r"#% (?P<word>if|else|end)(?: (?P<flag>\w+))?")
#: What a project without HTML pages leaves out.
_HTML_ONLY = (
    "__project__/pages.py-tpl",
    "__project__/templates",
    "__project__/static",
    "tests/test_pages.py-tpl",
)
#: Names that would shadow what the project imports, whether installed here or not.
_TAKEN = frozenset({"microback", "tests", "test", "app", "pytest", "webtest", "msgspec"})


@dataclass(frozen=True)
class ProjectOptions:
    """What to make: HTML pages or an API only, SQLite or PostgreSQL by default."""

    api_only: bool = False
    postgresql: bool = False

    @property
    def flags(self) -> frozenset[str]:
        """The ``#% if`` flags that hold for these options."""
        names = {"html": not self.api_only, "postgresql": self.postgresql}
        return frozenset(name for name, on in names.items() if on)

    def replacements(self, name: str) -> dict[str, str]:
        """The text each mark of the skeleton stands for."""
        extras = ([] if self.api_only else ["templates", "static"]) + (
            ["postgresql"] if self.postgresql else []
        )
        requirement = f"microback[{','.join(extras)}]" if extras else "microback"
        database = (
            f"postgresql://postgres@localhost:5432/{name}"
            if self.postgresql
            else f"sqlite:///{name}.db"
        )
        return {
            "__project__": name,
            "__PROJECT__": name.upper(),
            "__default_database_url__": database,
            "__microback_requirement__": requirement,
        }


def check_name(name: str) -> str | None:
    """Say what is wrong with ``name`` as a project's (and its package's) name, or None."""
    if not _NAME.fullmatch(name):
        return (
            f"{name!r} is not a valid project name: use lower-case letters, digits and "
            "underscores, starting with a letter (it is also the name of its Python package)"
        )
    if keyword.iskeyword(name) or name in sys.stdlib_module_names or name in _TAKEN:
        return f"{name!r} is taken by Python or by what the project imports; pick another name"
    spec = importlib.util.find_spec(name)
    if spec is not None:
        where = spec.origin or ", ".join(spec.submodule_search_locations or ())
        return (
            f"a module named {name!r} is already installed ({where}); pick another name, "
            f"so that 'import {name}' finds the project"
        )
    return None


def render(text: str, flags: frozenset[str], replacements: dict[str, str]) -> str:
    """Keep the lines whose ``#% if`` marks hold, drop the marks, replace the names."""
    kept: list[str] = []
    stack: list[bool] = []  # for each open "#% if": does its current branch hold?
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        directive = _DIRECTIVE.fullmatch(line.strip())
        if directive is None:
            if all(stack):
                kept.append(line)
            continue
        word, flag = directive["word"], directive["flag"]
        if word == "if" and flag:
            stack.append(flag in flags)
        elif word == "else" and stack and not flag:
            stack[-1] = not stack[-1]
        elif word == "end" and stack and not flag:
            stack.pop()
        else:
            raise ValueError(f"line {number}: misplaced {line.strip()!r}")
    if stack:
        raise ValueError("an '#% if' has no '#% end'")
    result = "".join(kept)
    for mark, value in replacements.items():
        result = result.replace(mark, value)
    return result


def create_project(name: str, parent: Path, options: ProjectOptions) -> Path:
    """Write the project ``name`` as the new folder ``parent/name``; give its path.

    Raises :class:`~microback.command.CommandError` for a bad name or a folder that exists.
    Nothing is left behind on failure: the files are written to a temporary folder beside
    the target and moved there at the end.
    """
    problem = check_name(name)
    if problem:
        raise CommandError(problem)
    target = parent / name
    if target.exists():
        raise CommandError(f"{target} already exists; pick another name or remove it")
    skeleton = resources.files("microback") / "skeleton"
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=parent) as temporary:
        staging = Path(temporary) / name
        _copy(skeleton, staging, "", options, options.replacements(name))
        staging.rename(target)
    return target


def _copy(
    source: Traversable,
    target: Path,
    relative: str,
    options: ProjectOptions,
    replacements: dict[str, str],
) -> None:
    target.mkdir()
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        path = f"{relative}{entry.name}"
        if entry.name == "__pycache__" or (options.api_only and path in _HTML_ONLY):
            continue
        name = entry.name.replace("__project__", replacements["__project__"])
        name = "." + name[len("dot-") :] if name.startswith("dot-") else name
        name = name.removesuffix("-tpl")
        if entry.is_dir():
            _copy(entry, target / name, f"{path}/", options, replacements)
        else:
            text = render(entry.read_text(encoding="utf-8"), options.flags, replacements)
            (target / name).write_text(text, encoding="utf-8")


def run_new(name: str, api_only: bool, postgresql: bool) -> int:
    """Write the project into the working directory and say what to do next."""
    options = ProjectOptions(api_only=api_only, postgresql=postgresql)
    path = create_project(name, Path.cwd(), options)
    pages = (
        "a JSON API" if api_only else "HTML pages (sign-up, log-in, a task list) and a JSON API"
    )
    database = (
        "PostgreSQL (its README says how to create the database)" if postgresql else "SQLite"
    )
    print(f"created {path.name}/: {pages}, on {database}")
    print("next:")
    print(f"  cd {name}")
    print("  python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]'")
    print(f"  microback db migrate {name}.app:app && microback serve {name}.app:app --reload")
    print("  python -m pytest")
    return 0
