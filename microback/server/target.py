"""Find the WSGI application a command line names: ``module:name``, ``file.py:name`` or ``module``.

Loading imports the user's code, so in ``microback serve`` it must run after gevent's
monkey-patching. Every failure is a :class:`TargetError` whose ``str()`` is one line that says
what was wrong and how to fix it; an exception raised by the user's code while it is imported
is wrapped in :class:`TargetImportError`, which keeps the original.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

DEFAULT_ATTRIBUTE = "app"
_FORMS = "use 'module:app' or 'path/to/file.py:app'"
_MAX_LISTED = 6


class TargetError(Exception):
    """The target could not be found or is not a WSGI application."""


class TargetImportError(TargetError):
    """The user's module raised an exception while it was imported."""

    def __init__(self, message: str, original: BaseException) -> None:
        super().__init__(message)
        self.original = original


@dataclass(frozen=True)
class Target:
    """A parsed target: a dotted module name or a ``.py`` path, and an attribute path."""

    module: str | None
    path: Path | None
    attribute: str
    text: str


def parse_target(text: str) -> Target:
    """Split *text* into what to import and which attribute to take; check only its form."""
    parts = text.split(":")
    if len(parts) > 2 or not all(parts):
        raise TargetError(f"{text!r} is not a valid target; {_FORMS}")
    where = parts[0]
    attribute = parts[1] if len(parts) == 2 else DEFAULT_ATTRIBUTE
    if not all(part.isidentifier() for part in attribute.split(".")):
        raise TargetError(
            f"{attribute!r} in {text!r} is not an attribute name; name a module-level "
            "object, as in 'module:app' (app factories are not called)"
        )
    if where.endswith(".py") or "/" in where or os.sep in where:
        return Target(module=None, path=Path(where), attribute=attribute, text=text)
    if not all(part.isidentifier() for part in where.split(".")):
        raise TargetError(f"{where!r} is not a module name; {_FORMS}")
    return Target(module=where, path=None, attribute=attribute, text=text)


def load_app(text: str) -> WSGIApplication:
    """Import the target *text* names and return its WSGI application.

    Puts the current directory first on ``sys.path`` (and a file target's directory before it),
    as ``python -m`` does, so the user's modules import each other as they do in their tests.
    """
    target = parse_target(text)
    module = import_module(target)
    obj: object = module
    for name in target.attribute.split("."):
        if not hasattr(obj, name):
            raise TargetError(_missing_attribute(target, obj, name))
        obj = getattr(obj, name)
    problem = _wsgi_problem(obj)
    if problem:
        raise TargetError(f"{target.module or target.path}:{target.attribute} is {problem}")
    app: WSGIApplication = obj  # type: ignore[assignment]
    return app


def source_directory(text: str) -> Path:
    """The directory that holds the code of the target *text* names, without importing it.

    For ``path/to/app.py:app`` it is ``path/to``; for ``module:app`` or ``package.module:app``
    the directory that holds the top-level module or package (usually the current one). This
    is what ``--reload`` watches.
    """
    target = parse_target(text)
    if target.path is not None:
        return target.path.resolve().parent
    assert target.module is not None
    _prepend_sys_path(os.getcwd())
    try:
        # For a top-level name, find_spec looks the module up without running any of it.
        spec = importlib.util.find_spec(target.module.partition(".")[0])
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return Path.cwd()
    parent = Path(spec.origin).resolve().parent
    if spec.submodule_search_locations is not None:  # a package: origin is its __init__.py
        parent = parent.parent
    if parent.name in ("site-packages", "dist-packages"):
        return Path.cwd()  # an installed package: not code being edited
    return parent


def import_module(target: Target) -> ModuleType:
    """Import the module of *target*, by dotted name or by file path."""
    _prepend_sys_path(os.getcwd())
    if target.path is not None:
        return _import_file(target.path)
    assert target.module is not None
    try:
        return importlib.import_module(target.module)
    except ModuleNotFoundError as exc:
        if not _is_prefix(exc.name, target.module):
            raise _import_error(target.module, exc, [Path.cwd()]) from exc
        raise TargetError(
            f"cannot find module {target.module!r} (no {exc.name!r} in {os.getcwd()} or on "
            f"sys.path); {_FORMS}, and run microback from the directory that contains it"
        ) from exc
    except Exception as exc:
        raise _import_error(target.module, exc, [Path.cwd()]) from exc


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise TargetError(f"no such file: {str(path)!r}; {_FORMS}")
    resolved = path.resolve()
    name = resolved.stem
    if not name.isidentifier():
        raise TargetError(f"cannot import {str(path)!r}: {name!r} is not a valid module name")
    _prepend_sys_path(str(resolved.parent))
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        raise _import_error(str(path), exc, [resolved.parent, Path.cwd()]) from exc
    found = getattr(module, "__file__", None)
    if found is None or Path(found).resolve() != resolved:
        raise TargetError(
            f"cannot import {str(path)!r}: another module named {name!r} is already imported "
            f"({found or 'built in'}); rename the file"
        )
    return module


def _prepend_sys_path(directory: str) -> None:
    if sys.path[:1] != [directory]:
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)


def _is_prefix(name: str | None, dotted: str) -> bool:
    return name is not None and (dotted == name or dotted.startswith(name + "."))


def _missing_attribute(target: Target, obj: object, name: str) -> str:
    owner = f"module {obj.__name__!r}" if isinstance(obj, ModuleType) else repr(target.attribute)
    message = f"{owner} has no attribute {name!r}"
    if isinstance(obj, ModuleType):
        found = _callables(obj)
        where = target.module or str(target.path)
        if not found:
            message += "; it defines no callables"
        elif len(found) <= _MAX_LISTED:
            message += f"; callables in it: {', '.join(found)}"
        message += f"; name the app as '{where}:NAME'"
    return message


def _callables(module: ModuleType) -> list[str]:
    """Public module-level objects that could be an app: instances and local functions."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or not callable(value) or isinstance(value, type):
            continue
        if inspect.isroutine(value) and getattr(value, "__module__", None) != module.__name__:
            continue  # imported functions are not the app
        names.append(name)
    return sorted(names)


def _wsgi_problem(obj: object) -> str | None:
    """Say why *obj* is not a WSGI application, or return None if it may be one."""
    wsgi = "a WSGI application (a callable taking environ and start_response)"
    if isinstance(obj, type):
        return f"a class, not {wsgi}; create the app in the module (app = {obj.__name__}())"
    if isinstance(obj, ModuleType):
        return f"a module, not {wsgi}"
    if not callable(obj):
        kind = type(obj).__name__
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}, not {wsgi}"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None  # a builtin or C callable: nothing to check
    try:
        signature.bind(object(), object())
    except TypeError:
        if not signature.parameters:
            return (
                f"a callable taking no arguments, not {wsgi}; if it is an app factory, "
                "call it in the module (app = create_app()) and name the result"
            )
        return f"a callable with the signature {signature}, not {wsgi}"
    return None


def _import_error(what: str, exc: BaseException, roots: list[Path]) -> TargetImportError:
    """Wrap *exc* in one line: type, message and the user's file and line that raised it."""
    if isinstance(exc, SyntaxError) and exc.filename:
        message = exc.msg
        location: str | None = f"{_display(exc.filename)}:{exc.lineno}"
    else:
        message = str(exc)
        location = _user_location(exc.__traceback__, roots)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    summary = type(exc).__name__ + (f": {lines[0]}" if lines else "")
    if location:
        summary += f" ({location})"
    return TargetImportError(f"importing {what!r} failed: {summary}", exc)


def _user_location(tb: TracebackType | None, roots: list[Path]) -> str | None:
    """``file:line`` of the innermost frame in the user's project, else the innermost frame."""
    frames = [frame for frame in traceback.extract_tb(tb) if not frame.filename.startswith("<")]
    if not frames:
        return None
    excluded = {
        Path(p).resolve() for p in (sys.prefix, sys.base_prefix, Path(__file__).parents[1])
    }
    for frame in reversed(frames):
        path = Path(frame.filename).resolve()
        in_project = any(path.is_relative_to(root.resolve()) for root in roots)
        if in_project and not any(path.is_relative_to(ex) for ex in excluded):
            return f"{_display(frame.filename)}:{frame.lineno}"
    return f"{_display(frames[-1].filename)}:{frames[-1].lineno}"


def _display(filename: str) -> str:
    try:
        return os.path.relpath(filename)
    except ValueError:
        return filename
