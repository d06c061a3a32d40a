"""What the declared contract costs (issue 14), in process: ``app(environ, start_response)``.

    python benchmarks/contract.py                                  # ~2 minutes
    python benchmarks/contract.py --old /tmp/old-checkout          # and before/after

Three apps answer the same POST of a 10-field JSON body (an order: a patterned SKU, a title
of 1 to 80 characters, a quantity in 1..100, a price, a currency among three, a flag, a list
of tags, a date, a UUID and an optional note):

- microback, **declared**: the body is a ``msgspec.Struct`` parameter (validated, unknown
  fields refused) and the answer leaves through the declared return type;
- microback, **echo**: ``return request.json``, nothing validated (the issue's baseline:
  the declared route may cost at most 1.5x this);
- Flask with **pydantic v2**: ``Order.model_validate_json(request.get_data())`` and
  ``model_dump_json()`` (the declared route must be at least 3x faster).

They take turns sample by sample (A, B, C, A, B, C...), and each figure is the best sample.

``--old CHECKOUT`` also measures routes *without* annotations (a GET answering a dict, and the
echo POST) on this checkout and on ``CHECKOUT`` (the commit before declared input), each in a
fresh interpreter, rounds alternating old/new: the best of all rounds for each, and the median
of each round's new/old. Results go to ``techempower/results/`` (``kind: contract``) and its
history.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "techempower"))

import msgspec  # noqa: E402
import record  # noqa: E402
from inprocess import call, environ_for  # noqa: E402

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SECRET = "contract-benchmark-secret-key-0123456789"
ORDER = {
    "sku": "ABC-1234",
    "title": "Oat milk, 1 l",
    "qty": 3,
    "price": 1.85,
    "currency": "EUR",
    "gift": False,
    "tags": ["dairy-free", "organic"],
    "due": "2026-12-24",
    "customer": "6f1c0e52-63b5-4a4b-9a7a-27c8f0b0a0a1",
    "note": "ring twice",
}
BODY = json.dumps(ORDER).encode()
Currency = Literal["EUR", "USD", "GBP"]


class Order(msgspec.Struct, forbid_unknown_fields=True):
    """The body microback's declared route takes and answers (module level: its annotations
    are resolved from this module)."""

    sku: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}-[0-9]+$")]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    qty: Annotated[int, msgspec.Meta(ge=1, le=100)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    currency: Currency
    gift: bool
    tags: Annotated[list[str], msgspec.Meta(max_length=10)]
    due: datetime.date
    customer: uuid.UUID
    note: str | None = None


def microback_app() -> WSGIApp:
    from microback import App

    app = App(secret_key=SECRET)

    def declared(request: Any, order: Order) -> Order:
        return order

    def echo(request: Any) -> Any:
        return request.json

    app.add_route("/declared", declared, ["POST"])
    app.add_route("/echo", echo, ["POST"])
    return app


def flask_app() -> WSGIApp:
    from flask import Flask, Response, request
    from pydantic import BaseModel, ConfigDict, Field

    class Order(BaseModel):
        model_config = ConfigDict(extra="forbid")

        sku: Annotated[str, Field(pattern="^[A-Z]{3}-[0-9]+$")]
        title: Annotated[str, Field(min_length=1, max_length=80)]
        qty: Annotated[int, Field(ge=1, le=100)]
        price: Annotated[float, Field(gt=0)]
        currency: Currency
        gift: bool
        tags: Annotated[list[str], Field(max_length=10)]
        due: datetime.date
        customer: uuid.UUID
        note: str | None = None

    app = Flask(__name__)

    @app.post("/declared")
    def declared() -> Any:
        order = Order.model_validate_json(request.get_data())
        return Response(order.model_dump_json(), mimetype="application/json")

    return app


def post(path: str, body: bytes) -> dict[str, Any]:
    environ = environ_for(path)
    environ.update(
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=str(len(body)),
    )
    environ["wsgi.input"] = io.BytesIO(body)
    return environ


def check(name: str, app: WSGIApp, environ: dict[str, Any], expected: Any) -> None:
    status, _, data = call(app, {**environ, "wsgi.input": io.BytesIO(BODY)})
    if not status.startswith("200") or json.loads(data) != expected:
        raise SystemExit(f"{name}: answered {status} {data[:200]!r}, not 200 {expected!r}")


def sample(app: WSGIApp, environ: dict[str, Any], body: bytes, seconds: float) -> float:
    """Microseconds per call over about ``seconds``: a fresh copy of environ and input each."""

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        pass

    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(100):
            request = dict(environ)
            request["wsgi.input"] = io.BytesIO(body)
            answer = app(request, start_response)
            for _ in answer:
                pass
            if hasattr(answer, "close"):
                answer.close()
        count += 100
    return elapsed * 1e6 / count


def interleaved(
    cases: dict[str, tuple[WSGIApp, dict[str, Any], bytes]], samples: int, seconds: float
) -> dict[str, float]:
    """Best microseconds per call of each case, the cases taking turns sample by sample."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(samples):
        for name, (app, environ, body) in cases.items():
            best[name] = min(best[name], sample(app, environ, body, seconds))
    return best


def unannotated(samples: int, seconds: float) -> dict[str, float]:
    """This interpreter's microback: a GET answering a dict and the echo POST, no annotations."""
    from microback import App

    app = App(secret_key=SECRET)

    def hello(request):  # type: ignore[no-untyped-def]
        return {"message": "Hello, World!"}

    def echo(request):  # type: ignore[no-untyped-def]
        return request.json

    app.add_route("/json", hello, ["GET"])
    app.add_route("/echo", echo, ["POST"])
    get = environ_for("/json")
    check("GET /json", app, get, {"message": "Hello, World!"})
    check("POST /echo", app, post("/echo", BODY), ORDER)
    return interleaved(
        {"GET dict": (app, get, b""), "POST echo": (app, post("/echo", BODY), BODY)},
        samples,
        seconds,
    )


def before_after(old: Path, rounds: int, samples: int, seconds: float) -> list[dict[str, Any]]:
    """Each round runs the old checkout and this one in fresh interpreters, order alternating."""
    here = Path(__file__).resolve().parents[1]
    runs: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    for round_ in range(rounds):
        order = [("old", old), ("new", here)]
        for label, checkout in order if round_ % 2 == 0 else reversed(order):
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(samples), str(seconds)],
                env={**os.environ, "PYTHONPATH": str(checkout)},
                capture_output=True,
                text=True,
                check=True,
            )
            for name, us in json.loads(done.stdout.splitlines()[-1]).items():
                runs[label].setdefault(name, []).append(us)
    rows = []
    for name in runs["new"]:
        old_us, new_us = runs["old"][name], runs["new"][name]
        rows.append(
            {
                "scenario": name,
                "old_us": round(min(old_us), 2),
                "new_us": round(min(new_us), 2),
                "new/old": round(min(new_us) / min(old_us), 3),
                # The host's load drifts over minutes: each round's pair is taken together.
                "paired_median": round(
                    statistics.median(n / o for n, o in zip(new_us, old_us, strict=True)), 3
                ),
                "rounds_old": [round(us, 2) for us in old_us],
                "rounds_new": [round(us, 2) for us in new_us],
            }
        )
    return rows


def old_commit(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        import microback

        where = Path(microback.__file__).resolve().parents[1]
        print(f"microback from {where}", file=sys.stderr)
        print(json.dumps(unannotated(int(sys.argv[2]), float(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--old", type=Path, help="a checkout from before declared input")
    parser.add_argument("--rounds", type=int, default=10, help="old/new rounds with --old")
    parser.add_argument("--old-samples", type=int, default=5, help="samples per case per round")
    parser.add_argument("--no-save", dest="save", action="store_false")
    options = parser.parse_args()

    ours, flask = microback_app(), flask_app()
    cases = {
        "microback declared": (ours, post("/declared", BODY), BODY),
        "microback echo": (ours, post("/echo", BODY), BODY),
        "Flask + pydantic v2": (flask, post("/declared", BODY), BODY),
    }
    for name, (app, environ, _) in cases.items():
        check(name, app, environ, ORDER)
    print(f"POST, 10-field JSON body: µs per call, best of {options.samples} x {options.seconds}s")
    best = interleaved(cases, options.samples, options.seconds)
    for name, us in best.items():
        print(f"  {name:22}{us:8.2f}")
    declared = best["microback declared"]
    ratios = {
        "declared / echo": declared / best["microback echo"],
        "Flask+pydantic / declared": best["Flask + pydantic v2"] / declared,
    }
    print(f"  declared / echo            {ratios['declared / echo']:.2f}x (target <= 1.5)")
    print(f"  Flask+pydantic / declared  {ratios['Flask+pydantic / declared']:.2f}x (target >= 3)")
    summary: list[dict[str, Any]] = [
        {"scenario": "POST 10 fields", "case": name, "us": round(us, 2)}
        for name, us in best.items()
    ]
    summary += [{"ratio": name, "value": round(value, 3)} for name, value in ratios.items()]

    if options.old is not None:
        print(f"\nwithout annotations, old = {options.old}, best of {options.rounds} rounds")
        rounds = (options.rounds, options.old_samples, options.seconds)
        for row in before_after(options.old, *rounds):
            summary.append({"before_after": row})
            print(
                f"  {row['scenario']:12} old {row['old_us']:7.2f}  new {row['new_us']:7.2f}"
                f"  new/old {row['new/old']:.3f}  (median of the rounds' new/old"
                f" {row['paired_median']:.3f})"
            )
    if options.save:
        command = ["python", "benchmarks/contract.py", *sys.argv[1:]]
        data = {
            "options": {
                "samples": options.samples,
                "seconds": options.seconds,
                "old": str(options.old) if options.old else None,
                "old_commit": old_commit(options.old) if options.old else None,
                "command": " ".join(command),
            }
        }
        path = record.save("contract", data, summary)
        print(f"\nwritten to {path.relative_to(record.REPO)} and results/history.jsonl")


if __name__ == "__main__":
    main()
