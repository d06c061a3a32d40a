"""Routes: registering handlers, grouping them under a prefix, matching and building URLs.

Rules, converters and URL building are werkzeug's. What is ours is the registry in front:
rules are added to the werkzeug ``Map`` as they are declared, so a bad path or an unknown
converter fails at import time. Two shortcuts answer the common request before werkzeug's
matcher, which costs more than the rest of a small request: paths without converters are
kept in a dict, and each rule with converters is compiled to one regular expression, filed
under its first path segment. A shortcut answers only when it finds exactly one rule for the
path and method; everything else (no match, several, a redirect, a 405) is werkzeug's to
decide, so the answers are werkzeug's.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, TypeVar

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import (
    BaseConverter,
    Map,
    MapAdapter,
    RequestRedirect,
    Rule,
    ValidationError,
)
from werkzeug.routing.converters import (
    FloatConverter,
    IntegerConverter,
    UnicodeConverter,
    UUIDConverter,
)
from werkzeug.routing.rules import parse_converter_args

__all__ = [
    "BaseConverter",
    "Handler",
    "IntConverter",
    "Match",
    "Route",
    "RouteTable",
    "Router",
    "check_handler_signature",
    "guard_handler",
    "guards",
    "path_converters",
    "path_template",
    "path_variables",
]

Handler = Callable[..., Any]
_H = TypeVar("_H", bound=Handler)
# Left by a route decorator on the function it registered: (that function, "GET /path").
# The function itself is stored because functools.wraps copies attributes onto wrappers.
_ROUTED = "__microback_routed__"
# Left by guard_handler on a wrapper that calls the function it wraps with its own arguments.
_FORWARDS = "__microback_forwards__"
# Left by guard_handler beside it: the check the wrapper makes before that call.
_CHECK = "__microback_check__"

#: A guard's check: a refusal to answer with instead of calling the handler, or ``None``.
Check = Callable[[Any], Any]

#: The range of a signed 64-bit integer: what every database stores in its largest column.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class IntConverter(IntegerConverter):
    """``<int:name>``: werkzeug's, but bounded to a signed 64-bit integer unless told otherwise.

    A larger number in a path is a 404 like any other path that names nothing, instead of a
    value the database driver refuses (SQLite raises ``OverflowError``: a 500).
    """

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        low = INT64_MIN if min is None and signed else min
        high = INT64_MAX if max is None else max
        super().__init__(map, fixed_digits, low, high, signed)


def _int64(text: str) -> int:
    """``IntConverter.to_python`` of an unsigned ``<int:name>``, without werkzeug's checks."""
    value = int(text)
    if value > INT64_MAX:
        raise ValueError(text)
    return value


class Route(NamedTuple):
    """One row of the route table: what ``microback routes`` prints."""

    methods: frozenset[str]
    path: str
    endpoint: str


class Match(NamedTuple):
    """What routing found for a request: the endpoint, its handler and the URL values."""

    endpoint: str
    handler: Handler
    values: dict[str, Any]


class _Entry(NamedTuple):
    path: str
    endpoint: str
    methods: frozenset[str]
    handler: Handler


def _handler_name(handler: Handler) -> str:
    module = getattr(handler, "__module__", None)
    name = getattr(handler, "__qualname__", repr(handler))
    return f"{module}.{name}" if module else name


def _wrapped_chain(handler: Handler) -> Iterable[Handler]:
    """``handler``, then each function it wraps (``__wrapped__``, set by functools.wraps)."""
    seen: set[int] = set()
    current: Handler | None = handler
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "__wrapped__", None)


def guard_handler(handler: _H, decorator: str, check: Check) -> _H:
    """A wrapper that calls ``handler`` unless ``check(request)`` gives a refusal to answer.

    A route decorator registers the function below it, so a guard written above the route
    decorator would wrap a function the route no longer calls, and leave the route open:
    that is a ``TypeError`` here, at import time, naming ``decorator`` ("@login_required").
    The wrapper takes ``handler``'s name and docstring (functools.wraps) and is marked as
    passing its arguments on unchanged, so the signature check of the route looks through
    it, and with its check, so declared input is read only once the guards let a request by
    (:func:`guards`).
    """

    def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
        refusal = check(request)
        if refusal is not None:
            return refusal
        return handler(request, *args, **kwargs)

    for function in _wrapped_chain(handler):
        routed = getattr(function, _ROUTED, None)
        if routed is not None and routed[0] is function:
            name = _handler_name(function)
            raise TypeError(
                f"{decorator} is above the route decorator of {name} ({routed[1]}), so the "
                f"route calls {name} without it and is left open: move {decorator} below "
                "the route decorator (@app.get(...) and the like go on top)"
            )
    functools.update_wrapper(wrapper, handler)
    setattr(wrapper, _FORWARDS, wrapper)
    setattr(wrapper, _CHECK, check)
    return wrapper  # type: ignore[return-value]


def guards(handler: Handler) -> tuple[list[Check], Handler]:
    """The checks of the guards on top of ``handler``, outermost first, and what they guard.

    A decorator of the user's between two guards ends the list: it is called as it is, with
    the guards below it inside.
    """
    checks: list[Check] = []
    current = handler
    while getattr(current, _FORWARDS, None) is current:
        checks.append(vars(current)[_CHECK])
        current = current.__wrapped__
    return checks, current


def check_handler_signature(
    handler: Handler, path: str, methods: Iterable[str], declared: Iterable[str] = ()
) -> None:
    """Raise ``TypeError`` unless ``handler(request, **url_values)`` can be called for ``path``.

    Each function a microback guard (``@login_required``...) wraps is checked too; another
    decorator's wrapper is taken at its word, since only it knows what it passes on.
    A callable whose signature cannot be read is left to fail when called. ``declared``
    names the parameters filled from the request (a declared body).
    """
    filled = dict.fromkeys([*path_variables(path), *declared])
    for function in _wrapped_chain(handler):
        try:
            signature = inspect.signature(function, follow_wrapped=False)
        except (TypeError, ValueError):
            return
        try:
            signature.bind(None, **filled)
        except TypeError as exc:
            target = getattr(function, "func", function)  # functools.partial: its function
            name = getattr(target, "__name__", "handler")
            wanted = ", ".join(["request", *filled])
            raise TypeError(
                f"the handler {_handler_name(target)}{signature} for "
                f"{' '.join(sorted(methods))} {path} cannot be called as {name}({wanted}) "
                f"({exc}): a handler takes the request first, then the URL values by name, "
                f"as in def {name}({wanted})"
            ) from None
        if getattr(function, _FORWARDS, None) is not function:
            return


def path_variables(path: str) -> list[str]:
    """The names of the variables in a route path, in order."""
    return [found["variable"] for found in _VARIABLE.finditer(path)]


def _check_methods(methods: Iterable[str] | None) -> None:
    if isinstance(methods, str):
        raise TypeError(f"methods must be a list such as [{methods!r}], not a string")


class Router:
    """A group of routes, optionally under a path ``prefix`` and an endpoint ``name``.

    Register routes with :meth:`route` or the method shortcuts, then mount the group on an
    app (or on another router) with ``app.mount(router)``. With ``name="api"``, endpoints
    are ``"api.<function name>"`` for :meth:`App.url_for`.
    """

    def __init__(self, prefix: str = "", *, name: str | None = None) -> None:
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"a Router prefix must start with '/', got {prefix!r}")
        self.prefix = prefix.rstrip("/")
        self.name = name
        self._entries: list[_Entry] = []
        self._handlers: dict[str, Handler] = {}
        self._mounted_on: Router | None = None

    def route(
        self, path: str, methods: Iterable[str] | None = None, *, endpoint: str | None = None
    ) -> Callable[[_H], _H]:
        """Register the decorated function for ``path`` and ``methods`` (GET by default).

        The handler is called as ``handler(request, **url_values)``. HEAD is answered from
        GET, and OPTIONS automatically, unless registered explicitly.
        """

        _check_methods(methods)

        def decorator(handler: _H) -> _H:
            self.add_route(path, handler, methods, endpoint=endpoint)
            mark = (handler, f"{' '.join(sorted(methods or ['GET']))} {self.prefix}{path}")
            # A bound method takes no attributes, and nothing can wrap it unseen.
            with contextlib.suppress(AttributeError, TypeError):
                setattr(handler, _ROUTED, mark)
            return handler

        return decorator

    def get(self, path: str, *, endpoint: str | None = None) -> Callable[[_H], _H]:
        """Register a GET (and HEAD) route."""
        return self.route(path, ["GET"], endpoint=endpoint)

    def post(self, path: str, *, endpoint: str | None = None) -> Callable[[_H], _H]:
        """Register a POST route."""
        return self.route(path, ["POST"], endpoint=endpoint)

    def put(self, path: str, *, endpoint: str | None = None) -> Callable[[_H], _H]:
        """Register a PUT route."""
        return self.route(path, ["PUT"], endpoint=endpoint)

    def patch(self, path: str, *, endpoint: str | None = None) -> Callable[[_H], _H]:
        """Register a PATCH route."""
        return self.route(path, ["PATCH"], endpoint=endpoint)

    def delete(self, path: str, *, endpoint: str | None = None) -> Callable[[_H], _H]:
        """Register a DELETE route."""
        return self.route(path, ["DELETE"], endpoint=endpoint)

    def add_route(
        self,
        path: str,
        handler: Handler,
        methods: Iterable[str] | None = None,
        *,
        endpoint: str | None = None,
    ) -> None:
        """Register ``handler`` without a decorator; see :meth:`route`."""
        if not path.startswith("/"):
            raise ValueError(f"a route path must start with '/', got {path!r}")
        _check_methods(methods)
        if not callable(handler):
            raise TypeError(f"the handler for {path!r} is not callable: {handler!r}")
        if self._mounted_on is not None:
            raise RuntimeError(
                f"cannot add {path!r}: this Router is already mounted; "
                "register its routes before mounting it"
            )
        names = frozenset(method.upper() for method in (methods or ["GET"]))
        name = endpoint or getattr(handler, "__name__", None)
        if not name:
            raise ValueError(f"cannot name the endpoint for {handler!r}; pass endpoint=")
        if self.name:
            name = f"{self.name}.{name}"
        self._add(_Entry(self.prefix + path, name, names, handler))

    def mount(self, router: Router) -> None:
        """Add every route of ``router`` here, under its prefix and endpoint name."""
        if router is self or router._mounted_on is not None:
            raise ValueError("a Router can be mounted once, and not on itself")
        router._mounted_on = self
        for entry in router._entries:
            endpoint = f"{self.name}.{entry.endpoint}" if self.name else entry.endpoint
            self._add(entry._replace(path=self.prefix + entry.path, endpoint=endpoint))

    def _add(self, entry: _Entry) -> None:
        existing = self._handlers.get(entry.endpoint)
        if existing is not None and existing is not entry.handler:
            raise ValueError(
                f"endpoint {entry.endpoint!r} is already taken by {_handler_name(existing)}; "
                f"pass endpoint= for {_handler_name(entry.handler)} or give its Router a name"
            )
        self._handlers[entry.endpoint] = entry.handler
        self._entries.append(entry)


# A variable in a rule, in werkzeug's syntax: <name>, <converter:name>, <converter(args):name>.
_VARIABLE = re.compile(
    r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<arguments>.*?)\))?:)?"
    r"(?P<variable>[a-zA-Z_][a-zA-Z0-9_]*)>"
)


class _Pattern(NamedTuple):
    """A rule with converters, as one regular expression over the whole path.

    Each variable has its name, the function that turns its text into its value (``None``
    when the text is the value), and whether a ``/`` in the text means no match.
    """

    regex: re.Pattern[str]
    variables: tuple[tuple[str, Callable[[str], Any] | None, bool], ...]
    methods: frozenset[str]
    endpoint: str


# werkzeug's converters whose patterns cannot match a "/", so their text need not be checked.
_WITHIN_A_SEGMENT = (UnicodeConverter, IntegerConverter, FloatConverter, UUIDConverter)


def _variable(
    name: str, converter: BaseConverter
) -> tuple[str, Callable[[str], Any] | None, bool]:
    """Describe one variable for ``_DynamicRoutes.match``, with werkzeug's conversion made cheap
    where it is a no-op (``<name>``) or plain ``int`` (``<int:name>`` without options)."""
    convert: Callable[[str], Any] | None = converter.to_python
    kind = type(converter)
    if kind is UnicodeConverter:
        convert = None
    elif (
        isinstance(converter, IntConverter)
        and kind is IntConverter
        and not converter.fixed_digits
        and not converter.signed
        and converter.min is None
        and converter.max == INT64_MAX
    ):
        convert = _int64  # what its to_python does then; a ValueError is its ValidationError
    slash_refuses = converter.part_isolating and kind not in _WITHIN_A_SEGMENT
    return name, convert, slash_refuses


def _converters(map: Map, path: str) -> Iterator[tuple[re.Match[str], BaseConverter]]:
    """Each variable of ``path``, and the converter werkzeug makes for it in ``map``."""
    for found in _VARIABLE.finditer(path):
        args, kwargs = parse_converter_args(found["arguments"] or "")
        yield found, map.converters[found["converter"] or "default"](map, *args, **kwargs)


def path_converters(map: Map, path: str) -> list[tuple[str, BaseConverter]]:
    """The name and converter of each variable of a route path, in order."""
    return [(found["variable"], converter) for found, converter in _converters(map, path)]


def path_template(path: str) -> str:
    """A route path with each variable written ``{name}``, as URI templates (OpenAPI) do."""
    return _VARIABLE.sub(lambda found: "{" + found["variable"] + "}", path)


def _compile(rule: Rule) -> _Pattern:
    parts: list[str] = []
    variables: list[tuple[str, Callable[[str], Any] | None, bool]] = []
    position = 0
    for found, converter in _converters(rule.map, rule.rule):
        parts.append(re.escape(rule.rule[position : found.start()]))
        name = found["variable"]
        parts.append(f"(?P<{name}>{converter.regex})")
        variables.append(_variable(name, converter))
        position = found.end()
    parts.append(re.escape(rule.rule[position:]))
    methods = frozenset(rule.methods or ())
    return _Pattern(re.compile("".join(parts)), tuple(variables), methods, str(rule.endpoint))


_NONE: list[_Pattern] = []


def _first_segment(path: str) -> str:
    end = path.find("/", 1)
    return path[1:] if end < 0 else path[1:end]


class _DynamicRoutes:
    """Rules with converters, filed by their first segment when that segment is static."""

    def __init__(self) -> None:
        self._by_segment: dict[str, list[_Pattern]] = {}
        self._anywhere: list[_Pattern] = []  # the first segment holds a variable

    def add(self, rule: Rule) -> None:
        pattern = _compile(rule)
        segment = _first_segment(rule.rule)
        if "<" in segment:
            self._anywhere.append(pattern)
        else:
            self._by_segment.setdefault(segment, []).append(pattern)

    def match(self, path: str, method: str) -> tuple[str, dict[str, Any]] | None:
        """Give the endpoint and values when exactly one rule takes the path and the method."""
        found: tuple[str, dict[str, Any]] | None = None
        for pattern in self._candidates(path):
            matched = pattern.regex.fullmatch(path)
            if matched is None:
                continue
            if found is not None or method not in pattern.methods:
                return None
            values: dict[str, Any] = {}
            for name, convert, slash_refuses in pattern.variables:
                raw = matched[name]
                if slash_refuses and "/" in raw:
                    return None  # werkzeug matches such a converter within one segment
                if convert is None:
                    values[name] = raw
                    continue
                try:
                    values[name] = convert(raw)
                except (ValidationError, ValueError):
                    return None
            found = pattern.endpoint, values
        return found

    def takes(self, path: str) -> bool:
        """Tell whether any rule's pattern matches ``path``, whatever the method."""
        return any(pattern.regex.fullmatch(path) for pattern in self._candidates(path))

    def _candidates(self, path: str) -> list[_Pattern]:
        filed = self._by_segment.get(_first_segment(path), _NONE)
        return filed + self._anywhere if self._anywhere else filed


class RouteTable:
    """The compiled routes of an app: werkzeug's ``Map``, and the shortcuts in front of it."""

    def __init__(self, converters: dict[str, type[BaseConverter]] | None = None) -> None:
        self.map = Map(converters={"int": IntConverter, **(converters or {})})
        self.handlers: dict[str, Handler] = {}
        self._static: dict[str, dict[str, str]] = {}
        self._dynamic = _DynamicRoutes()
        # Bound once, not per request: binding costs more than matching a static path.
        self._matcher: MapAdapter | None = None
        self._builder: MapAdapter | None = None

    def add(self, entry: _Entry) -> None:
        check_handler_signature(entry.handler, entry.path, entry.methods)
        rule = Rule(entry.path, methods=entry.methods, endpoint=entry.endpoint)
        self.map.add(rule)
        self.handlers[entry.endpoint] = entry.handler
        self._matcher = self._builder = None
        if not rule.arguments:
            by_method = self._static.setdefault(entry.path, {})
            for method in rule.methods or ():
                by_method.setdefault(method, entry.endpoint)
        else:
            self._dynamic.add(rule)

    def match(self, environ: dict[str, Any], path: str, method: str) -> Match:
        """Find the handler for ``method`` and ``path``, or raise werkzeug's HTTP errors.

        Raises ``NotFound``, ``MethodNotAllowed`` (with the allowed methods) or
        ``RequestRedirect`` (a 308 to the canonical path, e.g. with a trailing slash).
        """
        by_method = self._static.get(path)
        if by_method is not None:
            endpoint = by_method.get(method)
            if endpoint is not None:
                return Match(endpoint, self.handlers[endpoint], {})
        else:
            found = self._dynamic.match(path, method)
            if found is not None:
                return Match(found[0], self.handlers[found[0]], found[1])
            if self._surely_absent(path):
                raise NotFound()
        if self._matcher is None:
            self._matcher = self.map.bind("localhost")
        try:
            endpoint, values = self._matcher.match(path, method)
        except RequestRedirect:
            # Rare: bind to this request's host and scheme so the redirect URL is right.
            endpoint, values = self.map.bind_to_environ(environ).match(path, method)
        except MethodNotAllowed as exc:
            # werkzeug compares a rule's methods before its converters take the value, so a
            # value none takes (an id past 64 bits) was a 405 for some methods and a 404 for
            # others (found by schemathesis): a 405 only if a rule allowed takes the path.
            if not any(self._takes(path, allowed) for allowed in exc.valid_methods or ()):
                raise NotFound() from None
            raise
        return Match(endpoint, self.handlers[endpoint], dict(values))

    def _takes(self, path: str, method: str) -> bool:
        """Tell whether a rule for ``method`` takes ``path``, its converters included."""
        if self._matcher is None:
            self._matcher = self.map.bind("localhost")
        try:
            self._matcher.match(path, method)
        except (NotFound, MethodNotAllowed):
            return False
        except RequestRedirect:
            return True
        return True

    def _surely_absent(self, path: str) -> bool:
        """Tell whether werkzeug would answer 404, without running its (costly) matcher.

        It answers otherwise when a rule takes the path with another method (405), the path
        with a slash added (a redirect), or the path with repeated slashes merged.
        """
        return (
            "//" not in path
            and path + "/" not in self._static
            and not self._dynamic.takes(path)
            and not self._dynamic.takes(path + "/")
        )

    def build(self, endpoint: str, values: dict[str, Any]) -> str:
        """Build the path for ``endpoint``; values that are not URL parts become the query."""
        if self._builder is None:
            self._builder = self.map.bind("localhost")
        return self._builder.build(endpoint, values)

    def routes(self) -> list[Route]:
        """List every route, sorted by path then endpoint."""
        rows = [
            Route(frozenset(rule.methods or ()), rule.rule, str(rule.endpoint))
            for rule in self.map.iter_rules()
        ]
        return sorted(rows, key=lambda row: (row.path, row.endpoint))
