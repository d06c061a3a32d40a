"""Imports flow one way (docs/architecture.md); this test holds the direction.

Imports under ``if TYPE_CHECKING:`` are annotations only and are not counted.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "microback"

LAYERS = (
    *("http", "routing", "hosts", "security_headers", "header_defaults", "settings"),
    *("validation", "declared_output", "app"),
    *("security", "db", "server", "cli", "testing", "blocking"),
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
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules a file imports, outside TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package.split(".")
                if child.level:
                    base = base[: len(base) - child.level + 1]
                    name = ".".join([*base, child.module] if child.module else base)
                else:
                    name = child.module or ""
                found.add(name)
                found.update(f"{name}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
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
