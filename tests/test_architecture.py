"""Imports flow one way (docs/architecture.md); this test holds the direction.

Imports under ``if TYPE_CHECKING:`` are annotations only and are not counted.
"""

import ast
import functools
import importlib.util
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "microback"

LAYERS = (
    *("http", "routing", "hosts", "security_headers", "header_defaults", "settings"),
    *("validation", "declared_output", "app"),
    *("security", "db", "server", "cli", "testing", "blocking"),
    *("flash", "folders", "templates", "static"),
)

# For each layer: the microback modules it must not import.
FORBIDDEN = {
    # Plain data (the default security headers) shared by the app and the server.
    "header_defaults": set(LAYERS) - {"header_defaults"},
    "http": {"app", "db", "security", "server", "cli", "testing"},
    "routing": {"app", "http", "db", "security", "server", "cli", "testing"},
    # redact masks secrets in URLs for every layer, so it builds on nothing of microback.
    "redact": {
        "app",
        "http",
        "routing",
        "hosts",
        "security_headers",
        "settings",
        "db",
        "security",
        "server",
        "cli",
        "testing",
    },
    "hosts": {"app", "http", "routing", "settings", "db", "security", "server", "cli", "testing"},
    "security_headers": {"app", "http", "routing", "db", "security", "server", "cli", "testing"},
    "settings": {"app", "http", "routing", "db", "security", "server", "cli", "testing"},
    # Declared input builds on http; app fills it in at registration.
    "validation": {"app", "routing", "db", "security", "server", "cli", "testing"},
    "declared_output": {"app", "routing", "db", "security", "server", "cli", "testing"},
    "app": {"db", "security", "server", "cli", "testing", "blocking"},
    "security": {"server", "cli", "testing"},
    # db plugs into app through its hooks; security and testing build on db, not the reverse.
    "db": {"security", "server", "cli", "testing"},
    "server": {"app", "http", "routing", "settings", "db", "security", "cli", "testing"},
    # Pages plug into the app as db and security do: flash needs only the request's session,
    # templates the CSRF token and flashes, static files a route; none needs the database.
    "flash": {"app", "routing", "db", "security", "server", "cli", "testing", "templates"},
    "folders": set(LAYERS) - {"folders"},
    "templates": {"db", "server", "cli", "testing", "static"},
    "static": {"db", "security", "server", "cli", "testing", "templates", "flash"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_statements(path: Path, *, type_checking: bool) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for each import in a file, with relative modules made absolute
    (``import a.b`` is ``("a.b", [])``); TYPE_CHECKING blocks only if ``type_checking``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if (
                not type_checking
                and isinstance(child, ast.If)
                and "TYPE_CHECKING" in ast.unparse(child.test)
            ):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, []) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package.split(".")
                if child.level:
                    base = base[: len(base) - child.level + 1]
                    name = ".".join([*base, child.module] if child.module else base)
                else:
                    name = child.module or ""
                found.append((name, [alias.name for alias in child.names]))
            visit(child)

    visit(tree)
    return found


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules a file imports, outside TYPE_CHECKING blocks."""
    found: set[str] = set()
    for module, names in _import_statements(path, type_checking=False):
        found.add(module)
        found.update(f"{module}.{name}" for name in names)
    return found


def _files(layer: str) -> list[Path]:
    directory = PACKAGE / layer
    return sorted(directory.rglob("*.py")) if directory.is_dir() else [PACKAGE / f"{layer}.py"]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_do_not_import_upwards(layer):
    files = _files(layer)
    assert files and all(f.exists() for f in files), f"no files for layer {layer}"
    for path in files:
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "microback" and len(parts) > 1:
                assert parts[1] not in FORBIDDEN[layer], f"{path.name} imports {name}"


def test_only_server_cli_and_blocking_touch_gevent():
    # blocking.py hands CPU-heavy calls to gevent's thread pool when gevent runs the process;
    # the jobs worker runs job functions in greenlets, as the server runs handlers.
    allowed = ("cli.py", "blocking.py", "jobs/worker.py", "jobs/cli.py")
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("server/") or relative in allowed:
            continue
        gevent = [n for n in _imports(path) if n.split(".")[0] == "gevent"]
        assert not gevent, f"{relative} imports {gevent}"


def test_the_checker_sees_relative_imports():
    # Guard against a checker that passes because it sees nothing.
    assert "microback.routing" in _imports(PACKAGE / "app.py")
    assert "microback.app" not in _imports(PACKAGE / "http" / "request.py")  # TYPE_CHECKING only


# --- No import cycle -----------------------------------------------------------------------------


def _all_imports(path: Path) -> set[str]:
    """The microback modules a file imports, TYPE_CHECKING blocks included."""
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    found: set[str] = set()
    for module, names in _import_statements(path, type_checking=True):
        if not names and module in modules:
            found.add(module)
        for name in names:
            # "from . import x" imports the module x, not the package's __init__.
            if f"{module}.{name}" in modules:
                found.add(f"{module}.{name}")
            elif module in modules:
                found.add(module)
    found.discard(_module_name(path))
    return found


def _import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycle_even_for_type_checking():
    graph = {_module_name(path): _all_imports(path) for path in PACKAGE.rglob("*.py")}
    assert _import_cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    # Guard against a check that passes because it sees nothing.
    assert "microback.http" in _all_imports(PACKAGE / "app.py")
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _import_cycles(graph) == [["a", "b", "c"]]


# --- Private names of dependencies only in their seam module -------------------------------------

#: (dependency, what counts as a private name of it, the one module that may use such names).
#: Each seam module's functions say why they need the name; a test pins each (issue 13).
SEAMS = [
    ("werkzeug", r"_(?!_)\w*", "http/_werkzeug.py"),
    # c_make_encoder has no underscore but is undocumented: json's own encoder internals.
    ("json", r"_(?!_)\w*|c_make_encoder", "http/_stdlib_json.py"),
    # Model._meta is peewee's documented model metadata (its docs' "Model options"), not private.
    ("peewee", r"_(?!_|meta$)\w*", "db/_peewee.py"),
    ("playhouse", r"_(?!_)\w*", "db/_peewee.py"),
    ("pymysql", r"_(?!_)\w*", "db/_pymysql.py"),
    ("gevent", r"_(?!_)\w*", "server/_gevent.py"),
    ("huey", r"_(?!_)\w*", "jobs/_huey.py"),
]


def _dependency_files(dependency: str) -> list[Path]:
    spec = importlib.util.find_spec(dependency)
    assert spec is not None and spec.origin, f"{dependency} is not installed"
    if spec.submodule_search_locations is None:  # one module (peewee.py), not a package
        return [Path(spec.origin)]
    return sorted(Path(spec.origin).parent.rglob("*.py"))


def _defined_names(tree: ast.AST, *, classes_only: bool = False) -> set[str]:
    """Names a module defines: module and class attributes, methods, ``self.x`` attributes."""
    names: set[str] = set()
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    if not classes_only:
        scopes.append(tree)  # type: ignore[arg-type]
    for scope in scopes:
        body = scope.body if isinstance(scope, ast.ClassDef) else getattr(scope, "body", [])
        for statement in body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(statement.name)
            for target in ast.walk(statement):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    names.add(target.id)
                elif isinstance(target, ast.alias):
                    names.add((target.asname or target.name).split(".")[0])
        if isinstance(scope, ast.ClassDef):
            for node in ast.walk(scope):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                    and isinstance(node.ctx, ast.Store)
                ):
                    names.add(node.attr)
    return names


@functools.cache
def _private_names_of(dependency: str, pattern: str) -> frozenset[str]:
    names: set[str] = set()
    for path in _dependency_files(dependency):
        names |= _defined_names(ast.parse(path.read_bytes()))
    return frozenset(n for n in names if re.fullmatch(pattern, n))


def _base_root(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else ""


@functools.cache
def _subclasses_of(dependency: str) -> frozenset[str]:
    """Names of microback's classes that derive, directly or not, from one of dependency's."""
    derived: set[str] = set()
    classes: list[tuple[ast.ClassDef, set[str]]] = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        from_dependency = set()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").split(".")[0] == dependency
            ):
                from_dependency.update(a.asname or a.name for a in node.names)
            elif isinstance(node, ast.Import):
                from_dependency.update(
                    (a.asname or a.name).split(".")[0]
                    for a in node.names
                    if a.name.split(".")[0] == dependency
                )
        classes += [(n, from_dependency) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    changed = True
    while changed:
        changed = False
        for cls, from_dependency in classes:
            roots = {_base_root(base) for base in cls.bases}
            if cls.name not in derived and roots & (from_dependency | derived):
                derived.add(cls.name)
                changed = True
    return frozenset(derived)


@functools.cache
def _own_attributes(dependency: str) -> frozenset[str]:
    """Attributes microback defines on its own classes: its own, whatever they are called."""
    own: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for cls in ast.walk(ast.parse(path.read_text())):
            if isinstance(cls, ast.ClassDef) and cls.name not in _subclasses_of(dependency):
                own |= _defined_names(cls, classes_only=True)
    return frozenset(own)


def _private_uses(
    path: Path, dependency: str, pattern: str, exempt: frozenset[str] = frozenset()
) -> list[str]:
    """Where a microback file uses a private name of ``dependency``, as "line: code".

    Names in ``exempt`` are not reported (another seam's own, when two dependencies share one).
    """
    private = _private_names_of(dependency, pattern)
    derived = _subclasses_of(dependency)
    own = _own_attributes(dependency)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []

    def note(node: ast.AST, *names: str) -> None:
        if not names or not set(names) <= exempt:  # an import names its dependency
            found.append(f"{node.lineno}: {ast.unparse(node)}")  # type: ignore[attr-defined]

    def visit(node: ast.AST, in_derived: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_derived
            if isinstance(child, ast.ClassDef):
                inside = child.name in derived
            if isinstance(child, ast.ImportFrom) and child.module:
                parts = child.module.split(".")
                if parts[0] == dependency and (
                    any(re.fullmatch(pattern, p) for p in parts[1:])
                    or any(re.fullmatch(pattern, a.name) for a in child.names)
                ):
                    note(child)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    parts = alias.name.split(".")
                    if parts[0] == dependency and any(re.fullmatch(pattern, p) for p in parts[1:]):
                        note(child)
            elif isinstance(child, ast.Attribute) and child.attr in private:
                on_self = isinstance(child.value, ast.Name) and child.value.id == "self"
                if child.attr not in own or (on_self and inside):
                    note(child, child.attr)
            elif (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id in ("getattr", "setattr", "hasattr", "delattr")
                and len(child.args) >= 2
                and isinstance(child.args[1], ast.Constant)
                and child.args[1].value in private
            ):
                note(child, child.args[1].value)
            visit(child, inside)

    visit(tree, False)
    return found


def _uses_outside(dependency: str, pattern: str, seam: str | None) -> dict[str, list[str]]:
    """Where microback uses a private name of ``dependency`` outside ``seam`` (None: anywhere).

    Another dependency's seam may use a name this one defines too (gevent's socket and
    PyMySQL's connection both have _sock): that use is the other seam's.
    """
    other_seams: dict[str, frozenset[str]] = {}
    for other, other_pattern, other_seam in SEAMS:  # db/_peewee.py is peewee's and playhouse's
        if other_seam != seam:
            names = _private_names_of(other, other_pattern)
            other_seams[other_seam] = other_seams.get(other_seam, frozenset()) | names
    uses = {
        relative: _private_uses(path, dependency, pattern, other_seams.get(relative, frozenset()))
        for path in sorted(PACKAGE.rglob("*.py"))
        if (relative := path.relative_to(PACKAGE).as_posix()) != seam
    }
    return {file: lines for file, lines in uses.items() if lines}


# The two scans of every dependency's source take ~25 s: run with the slow suites (.ci/run), so
# the README's test command stays well under five minutes.
@pytest.mark.slow
@pytest.mark.parametrize(("dependency", "pattern", "seam"), SEAMS, ids=[s[0] for s in SEAMS])
def test_private_names_of_a_dependency_only_in_its_seam(dependency, pattern, seam):
    assert _uses_outside(dependency, pattern, seam) == {}, (
        f"private names of {dependency} belong in microback/{seam}, with a reason and a test"
    )
    assert _private_uses(PACKAGE / seam, dependency, pattern), f"{seam} uses nothing private"


@pytest.mark.slow
def test_no_private_name_of_psycopg_anywhere():
    # The other driver: its transaction status is read through peewee's adapter (a peewee
    # name, in db/_peewee.py); nothing of psycopg's own private names is used, so it has no
    # seam. A use would need one, with a reason and a test. (os._exit, documented, is also a
    # name of psycopg's.)
    pattern = r"_(?!_|exit$)\w*"
    assert _private_names_of("psycopg", pattern) >= {"_check_connection_ok", "_pgconn"}
    assert _uses_outside("psycopg", pattern, None) == {}


def test_the_seam_check_sees_private_uses():
    # Guard against a check that passes because it sees nothing: the old uses, out of place.
    assert {"_list", "_status", "_on_close", "_wsgi_decoding_dance"} <= _private_names_of(
        "werkzeug", SEAMS[0][1]
    )
    assert "c_make_encoder" in _private_names_of("json", SEAMS[1][1])


def test_no_writes_into_another_objects_dict():
    # request.user is a typed attribute set as one; a write into request.__dict__ bypasses the
    # type checker (security/auth.py did that before issue 13).
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "__dict__"
            ):
                owner = ast.unparse(node.value.value)
                assert owner == "self", f"{path.name}:{node.lineno} writes {owner}.__dict__"


def test_the_seam_check_sees_peewee_pymysql_gevent_and_huey_names():
    # The private names the db and server seams use are ones the check knows (issue 13).
    assert {"_ConnectionLocal", "_get_cursor_wrapper", "_atomic", "_expressions"} <= (
        _private_names_of("peewee", SEAMS[2][1])
    )
    assert {"_is_closed", "_close", "_wait_timeout"} <= _private_names_of("playhouse", SEAMS[3][1])
    assert "_sock" in _private_names_of("pymysql", SEAMS[4][1])
    assert "_sock" in _private_names_of("gevent", SEAMS[5][1])
    assert "_registry" in _private_names_of("huey", SEAMS[6][1])
