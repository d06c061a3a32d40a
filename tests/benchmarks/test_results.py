"""The runner's arithmetic and the rendered report: what a reader of ``latest.md`` relies on."""

from __future__ import annotations

import json

import pytest
import record
import render
import run
from suite import PATHS

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8000/json
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms    0.61ms  10.55ms   89.81%
    Req/Sec    33.10k     1.60k   35.20k    80.00%
  Latency Distribution
     50%  850.00us
     75%    1.61ms
     90%    1.97ms
     99%    1.20s
  32950 requests in 1.00s, 4.65MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  32958.31
Transfer/sec:      4.65MB
"""


def test_wrk_output_is_read_with_its_errors_and_units():
    assert run.parse_wrk(WRK_OUTPUT) == {
        "rps": 32958.3,
        "requests": 32950,
        "p50_ms": 0.85,
        "p99_ms": 1200.0,
        "errors": {"non2xx": 7, "connect": 0, "read": 3, "write": 0, "timeout": 2},
    }


def test_unreadable_wrk_output_is_an_error_not_a_zero():
    with pytest.raises(RuntimeError, match="cannot read wrk's output"):
        run.parse_wrk("unable to connect to 127.0.0.1:8000 Connection refused")


def measurement(rps, round_, errors=None, framework="microback", test="json", database=None):
    return {
        "test": test,
        "database": database,
        "server": "microback",
        "framework": framework,
        "connections": 50,
        "round": round_,
        "rps": rps,
        "requests": rps * 5,
        "p50_ms": 1.0,
        "p99_ms": float(round_),
        "cpu_us": 30.0,
        "errors": errors or {},
    }


def test_summary_takes_medians_and_sums_errors():
    runs = [
        measurement(100.0, 1),
        measurement(300.0, 2, {"non2xx": 2}),
        measurement(200.0, 3, {"timeout": 1}),
    ]
    instances = [
        {"server": "microback", "framework": "microback", "database": "sqlite", "round": r}
        | {"rss_start_mb": 40.0 + r, "rss_peak_mb": 50.0 + r}
        for r in (1, 2, 3)
    ]
    [row] = run.summarize(runs, instances, "sqlite")
    assert (row["rps"], row["p99_ms"], row["errors"], row["rounds"]) == (200.0, 2.0, 3, 3)
    # JSON has no database: its memory is that of the servers started on the first one.
    assert (row["rss_start_mb"], row["rss_peak_mb"]) == (42.0, 52.0)


def test_tests_without_a_database_run_on_the_first_one_only():
    urls = {"sqlite": "sqlite:///x", "postgresql": "postgresql://y"}
    assert run.plan_tests(["json", "db"], urls) == {"sqlite": ["json", "db"], "postgresql": ["db"]}
    assert run.plan_tests(["json"], urls) == {"sqlite": ["json"]}


def row(server, framework, rps, test="json", database=None):
    return {
        "test": test,
        "database": database,
        "server": server,
        "framework": framework,
        "connections": 50,
        "rounds": 3,
        "rps": rps,
        "p50_ms": 1.25,
        "p99_ms": 4.5,
        "cpu_us": 30.0,
        "errors": 0,
        "rss_start_mb": 40.0,
        "rss_peak_mb": 45.0,
    }


def ascii_of(markdown: str) -> str:
    """The report with its en dashes and multiplication signs as - and x, for comparing."""
    return markdown.replace("\u2013", "-").replace("\u00d7", "x")


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "RESULTS", tmp_path)
    monkeypatch.setattr(record, "HISTORY", tmp_path / "history.jsonl")
    monkeypatch.setattr(render, "charts", lambda entries: [])  # matplotlib: not needed here
    return tmp_path


def full_run_options() -> dict:
    return {
        "tests": list(PATHS),
        "servers": {"pywsgi": "gevent.pywsgi", "microback": "microback serve"},
        "frameworks": ["raw", "microback", "flask"],
        "databases": ["sqlite"],
        "connections": [50],
        "rounds": 3,
        "duration_s": 5,
        "pipeline": 16,
        "command": "python benchmarks/techempower/run.py",
    }


def test_a_run_is_kept_as_data_and_rendered_with_ratios(results):
    options = full_run_options()
    summary = [
        row("pywsgi", "raw", 10_000.0),
        row("pywsgi", "microback", 8_000.0),
        row("pywsgi", "flask", 4_000.0),
        row("microback", "raw", 30_000.0),
        row("microback", "microback", 15_000.0),
        row("microback", "flask", 7_500.0),
    ]
    path = record.save("http", {"options": options, "runs": []}, summary)

    saved = json.loads(path.read_text())
    assert saved["kind"] == "http"
    assert saved["summary"] == summary
    assert {"cpu", "cores", "python", "packages"} <= set(saved["host"])
    assert {"commit", "dirty", "date"} <= set(saved)
    [entry] = record.history("http")
    assert entry["file"] == path.name

    render.render()
    latest = ascii_of((results / "latest.md").read_text())
    assert "| json | - | microback | 30,000 | 15,000 | 7,500 |" in latest
    # Each implementation / raw WSGI on the same server; microback / each.
    assert "| json | - | microback | 1.00x | 0.50x | 0.25x |" in latest
    assert "| json | - | pywsgi | 0.80x | 1.00x | 2.00x |" in latest
    # Across servers: microback on microback serve against raw WSGI on pywsgi, target 2x.
    target = (
        "| json | microback on `microback` | raw WSGI on `pywsgi` | 1.50x | 1.00x | 2.0x not met |"
    )
    assert target in latest
    assert "| microback | sqlite | 40 → 45 | 40 → 45 | 40 → 45 |" in latest  # RSS, MB
    assert "| json | - | pywsgi | 1.2 / 4.5 | 1.2 / 4.5 | 1.2 / 4.5 |" in latest
    assert "None." in latest  # no errors


def test_a_run_of_part_of_the_suite_is_shown_after_the_full_run_not_instead(results):
    record.save(
        "http", {"options": full_run_options(), "runs": []}, [row("microback", "raw", 30_000.0)]
    )
    partial = {
        **full_run_options(),
        "tests": ["db"],
        "servers": {"microback": "microback serve", "granian": "Granian"},
        "frameworks": ["microback"],
        "command": "python benchmarks/techempower/run.py --tests db",
    }
    db_rows = [
        row("microback", "microback", 3_448.0, test="db", database="postgresql"),
        row("granian", "microback", 3_720.0, test="db", database="postgresql"),
    ]
    record.save("http", {"options": partial, "runs": []}, db_rows)

    render.render()
    latest = ascii_of((results / "latest.md").read_text())
    full = latest.index("## Over HTTP: the TechEmpower test types")
    since = latest.index("## Since then, part of the suite: db")
    assert full < since
    assert "| json | - | microback | 30,000 |" in latest[full:since]
    assert "| db | postgresql | granian | 3,720 |" in latest[since:]


def test_inprocess_results_are_rendered_with_growth(results):
    summary = [
        {"scenario": scenario, "framework": framework, "us": us}
        for scenario, values in {
            "routing, 10 routes": (2.0, 10.0),
            "routing, 100 routes": (2.0, 10.0),
            "routing, 1,000 routes": (2.0, 20.0),
            "JSON": (2.0, 8.0),
        }.items()
        for framework, us in zip(("raw", "microback"), values, strict=True)
    ]
    options = {"samples": 7, "seconds": 0.3, "frameworks": ["raw", "microback"], "command": "x"}
    record.save("inprocess", {"options": options}, summary)
    render.render()
    latest = ascii_of((results / "latest.md").read_text())
    assert "| JSON | 2.0 | 8.0 |" in latest
    assert "| JSON | +0.0 | +6.0 |" in latest
    assert "| JSON | 0.25x | 1.00x |" in latest
    assert "- microback: 10.0 → 10.0 → 20.0 µs (2.00x the time for 100x the routes)" in latest
