"""Write a migration from the difference between the models and the live schema.

peewee finds most of the difference and renders it: ``playhouse.schema_diff.diff_models`` lists
tables to create, columns to add and drop and indexes to add and drop, and
``playhouse.migrations.template`` turns that into ``up()`` and ``down()``. This module adds what
they leave out:

- a table that no model covers is dropped (``diff_models`` never proposes it), and ``down()``
  recreates it, empty, from the live schema (``playhouse.reflection``);
- the tables behind ``ManyToManyField`` count as covered, and the history table is never dropped;
- the file imports the peewee names it uses instead of ``from peewee import *``, so it lints clean;
- a default computed in Python (a function) is left out without peewee's ``# TODO: default
  <function ... at 0x...>``: a created table or a nullable column needs none (the app's model
  fills new rows), and a NOT NULL column added to a table with rows gets a stable TODO that says
  what to write.

Not detected, as in ``diff_models``: a changed column type, nullability, default or constraint;
a renamed column or table shows as a drop plus an add. Tables in other schemas are not compared.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import peewee
from peewee import sort_models  # type: ignore[attr-defined]  # not in its stubs
from playhouse.migrations import template
from playhouse.reflection import generate_models
from playhouse.schema_diff import SchemaDiff, diff_models

from .migrations import HISTORY_TABLE

__all__ = ["SchemaChanges", "compare", "render"]

_UP = "def up(migrator, db):"
_DOWN = "def down(migrator, db):"
_STAR = "from peewee import *"
# playhouse's note for a default it cannot write as source: "<field>: default <repr> must be
# added by hand", where the repr of a function holds its address, new on every run.
_PYTHON_DEFAULT = re.compile(r"^# TODO: (\w+): default .* must be added by hand$")
_LINE_LIMIT = 99


@dataclass(frozen=True)
class SchemaChanges:
    """What a migration must do to bring the schema to the models."""

    #: peewee's diff: tables to create, columns to add and drop, indexes to add and drop.
    diff: SchemaDiff
    #: Tables that exist in the database and that no model covers, in the order to drop them.
    drop_tables: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.diff) or bool(self.drop_tables)

    def describe(self) -> list[str]:
        """One line per change, as ``create table note`` or ``drop column note.title``."""
        lines = str(self.diff).splitlines() if self.diff else []
        lines += [f"drop table {table} (its rows are lost)" for table in self.drop_tables]
        return lines


def compare(
    database: peewee.Database,
    models: Iterable[type[peewee.Model]],
    *,
    keep: Iterable[str] = (HISTORY_TABLE,),
) -> SchemaChanges:
    """Compare the live schema of *database* with *models*; tables named in *keep* stay."""
    models = _with_through_models(models)
    covered = {m._meta.table_name for m in models if m._meta.schema is None}
    kept = set(keep)
    shadowed = tuple(
        f"{m._meta.table_name}_" for m in models if getattr(m._meta, "extension_module", None)
    )
    extra = [
        table
        for table in database.get_tables()
        if table not in covered
        and table not in kept
        # SQLite's own tables, and the shadow tables of full-text (virtual) tables.
        and not table.startswith(("sqlite_", *shadowed))
    ]
    dropped = _reflect(database, extra)
    order = tuple(m._meta.table_name for m in reversed(sort_models(dropped)))
    return SchemaChanges(diff_models(database, models), order)


def render(changes: SchemaChanges, database: peewee.Database, title: str) -> str:
    """Render *changes* as the text of a migration file."""
    header, up, down = _split(template(changes.diff))
    notes = [line for line in header if line.startswith("# TODO")]
    unwritten = {found[1] for line in notes if (found := _PYTHON_DEFAULT.match(line))}
    notes = [line for line in notes if not _PYTHON_DEFAULT.match(line)]
    notes += _computed_defaults(changes.diff, unwritten)
    imports = [line for line in header if line.startswith(("import ", "from ")) and line != _STAR]
    if changes.drop_tables:
        dropped = sort_models(_reflect(database, changes.drop_tables))
        _, recreate, _ = _split(template(SchemaDiff(dropped, [], [], [], [])))
        up += [f"migrator.migrate(migrator.drop_table({t!r}))" for t in changes.drop_tables]
        down = [*recreate, "", *down] if down else recreate
        notes += [
            f"# NOTE: down() recreates table {t} empty; up() loses its rows."
            for t in changes.drop_tables
        ]
    described = "\n".join(f"- {line}" for line in changes.describe())
    code = "\n".join([_block(_UP, up), "", "", _block(_DOWN, down)])
    if notes:
        code = "\n".join(notes) + "\n\n\n" + code
    docstring = (
        f'"""{title}\n\n'
        "Generated by `microback db new --auto` from the difference between the models and\n"
        f"the database:\n{described}\n\n"
        "Read it before applying it: a renamed column shows as a drop plus an add, and a\n"
        'changed type or constraint is not detected.\n"""'
    )
    import_lines = _imports(imports, code)
    blank = "\n\n" if notes else "\n\n\n"
    return f"{docstring}\n\n" + (f"{import_lines}{blank}" if import_lines else "") + code + "\n"


def _computed_defaults(diff: SchemaDiff, unwritten: set[str]) -> list[str]:
    """A TODO for each NOT NULL column added with a default that the file could not write
    (``unwritten`` names the fields), so that the rows already in the table have no value."""
    notes = []
    for field in diff.add_columns:
        default = field.default
        if field.null or field.name not in unwritten:
            continue
        notes.append(
            f"# TODO: {field.model._meta.table_name}.{field.column_name}: the rows already in "
            f"the table need a value, and its default ({_source(default)}) cannot be copied "
            f"into a migration: give {type(field).__name__}(...) in up() a fixed default=, "
            "or null=True"
        )
    return notes


def _source(default: object) -> str:
    """``module.qualname`` of a function: stable from run to run, unlike its ``repr``."""
    module = getattr(default, "__module__", None)
    name = getattr(default, "__qualname__", None) or type(default).__name__
    return f"{module}.{name}" if module else str(name)


def _with_through_models(models: Iterable[type[peewee.Model]]) -> list[type[peewee.Model]]:
    accum = list(models)
    for model in list(accum):
        for field in model._meta.manytomany.values():
            through = field.get_through_model()
            if through not in accum:
                accum.append(through)
    return accum


def _reflect(database: peewee.Database, tables: Sequence[str]) -> list[type[peewee.Model]]:
    """Models for *tables* read from the live schema, named in CamelCase for the file."""
    if not tables:
        return []
    reflected = generate_models(database, table_names=list(tables))
    for name, model in reflected.items():
        camel = "".join(part.capitalize() for part in name.split("_"))
        model.__name__ = camel if camel.isidentifier() else f"Table{camel}"
    return [reflected[name] for name in tables]


def _split(text: str) -> tuple[list[str], list[str], list[str]]:
    """Split a file rendered by playhouse's ``template()`` into header, up and down bodies."""
    lines = text.splitlines()
    try:
        start, middle = lines.index(_UP), lines.index(_DOWN)
    except ValueError:  # pragma: no cover - a peewee release changed its template
        raise RuntimeError("playhouse.migrations.template() output is not understood") from None
    return lines[:start], _body(lines[start + 1 : middle]), _body(lines[middle + 1 :])


def _body(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    body = [line[4:] for line in lines]
    return [] if body == ["pass"] else body


def _block(signature: str, body: list[str]) -> str:
    if not body:
        body = ["pass"]
    return "\n".join([signature, *(f"    {line}" if line else "" for line in body)])


def _imported(line: str) -> list[ast.alias]:
    """The names an import line binds."""
    node = ast.parse(line).body[0]
    return node.names if isinstance(node, ast.Import | ast.ImportFrom) else []


def _imports(others: list[str], code: str) -> str:
    """The import lines: the standard library's, then peewee's names that *code* uses."""
    tree = ast.parse(code)
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    # A field class the models take from elsewhere (microback.db.fields' DateTimeField keeps
    # microseconds on MariaDB) is imported by *others*; peewee's namesake would shadow it.
    imported = {alias.asname or alias.name for line in others for alias in _imported(line)}
    names = sorted((used - defined - imported) & set(peewee.__all__))
    stdlib = sorted(
        line for line in others if line.split()[1].split(".")[0] in sys.stdlib_module_names
    )
    third = sorted(line for line in others if line not in stdlib)
    if names:
        line = f"from peewee import {', '.join(names)}"
        if len(line) > _LINE_LIMIT:  # as ruff format writes it
            line = "from peewee import (\n" + "".join(f"    {n},\n" for n in names) + ")"
        third = sorted([*third, line])
    return "\n\n".join("\n".join(group) for group in (stdlib, third) if group)
