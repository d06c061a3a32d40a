"""Render the benchmark history: ``results/latest.md`` and, with matplotlib, PNG charts.

    python benchmarks/techempower/render.py

Reads ``results/history.jsonl`` (written by ``run.py`` and ``inprocess.py``), so it can
re-render at any time: the tables come from the latest run of each kind, the history chart
from every HTTP run. Charts: ``results/throughput.png`` (requests per second by test, server
and implementation, latest run) and ``results/history.png`` (each implementation on
``microback serve`` over the commits).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import record
from suite import FRAMEWORKS, LABELS, PATHS

FRAMEWORK_ORDER = list(FRAMEWORKS)
NONE = "\u2013"  # an en dash, where there is no figure
TIMES = "\u00d7"
PEERS = ["falcon", "bottle", "flask"]


def render() -> list[Path]:
    """Write ``latest.md`` and the charts from the history; return the files written."""
    http_runs = record.history("http")
    inprocess_runs = record.history("inprocess")
    if not http_runs and not inprocess_runs:
        raise SystemExit(f"no results yet in {record.HISTORY}: run run.py or inprocess.py")
    lines = ["# Benchmarks: the latest runs", ""]
    lines.append(
        "Written by `benchmarks/techempower/render.py` from `history.jsonl`; the numbers are"
        " rough on a host shared with other work (CPU time per request moves less than"
        " requests per second)."
    )
    written = []
    # A sweep (--connections with several levels) is shown beside the latest full run, and
    # a run of part of the suite (--tests db, say) after it: neither replaces the full run.
    level_runs = [run for run in http_runs if len(run["options"]["connections"]) == 1]
    full_runs = [run for run in level_runs if set(PATHS) <= set(run["options"]["tests"])]
    sweeps = [run for run in http_runs if len(run["options"]["connections"]) > 1]
    if full_runs:
        lines += http_section(full_runs[-1])
        since = level_runs[level_runs.index(full_runs[-1]) + 1 :]
    else:
        since = level_runs
    for run in since:
        lines += http_section(
            run, heading=f"Since then, part of the suite: {', '.join(run['options']['tests'])}"
        )
    if sweeps:
        lines += concurrency_section(sweeps[-1])
    if inprocess_runs:
        lines += inprocess_section(inprocess_runs[-1])
    latest = record.RESULTS / "latest.md"
    latest.write_text("\n".join(lines) + "\n")
    written.append(latest)
    if full_runs:
        written += charts(full_runs)
    return written


# --- tables ----------------------------------------------------------------------------------


def describe(entry: dict[str, Any]) -> list[str]:
    host = entry["host"]
    commit = entry["commit"][:10] or "(no git)"
    dirty = " with uncommitted changes" if entry.get("dirty") else ""
    return [
        f"Commit `{commit}`{dirty} ({entry.get('subject', '')!r}), {entry['date']}; "
        f"{host['cpu']}, {host['cores']} cores, {host['system']}, Python {host['python']}.",
        "",
    ]


def table(header: list[str], rows: Iterable[list[str]], left: int = 3) -> list[str]:
    """A Markdown table; the first ``left`` columns are labels, the rest numbers."""
    align = [":--"] * left + ["--:"] * (len(header) - left)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def number(value: float | None, spec: str = ".1f") -> str:
    return NONE if value is None else format(value, spec)


def http_section(
    entry: dict[str, Any], heading: str = "Over HTTP: the TechEmpower test types"
) -> list[str]:
    options = entry["options"]
    summary = entry["summary"]
    frameworks = [f for f in FRAMEWORK_ORDER if f in options["frameworks"]]
    servers = list(options["servers"])
    lines = ["", f"## {heading}", ""]
    lines += describe(entry)
    lines.append(
        f"`{options['command']}`: wrk -t1, {options['duration_s']} s per measurement, medians of"
        f" {options['rounds']} interleaved rounds; plaintext pipelined {options['pipeline']} deep"
        " (no latency: wrk's percentiles are wrong with pipelining);"
        " multiple queries and updates with `queries=20`. One-process servers pinned to CPU 0"
        " and wrk to CPU 1; two-worker servers not pinned (wrk shares their cores)."
    )
    lines.append("")
    lines += [f"- `{name}`: {description}" for name, description in options["servers"].items()]
    lines.append("")
    index = {
        (r["test"], r["database"], r["server"], r["framework"], r["connections"]): r
        for r in summary
    }
    keys = sorted(
        {(r["test"], r["database"], r["server"]) for r in summary},
        key=lambda k: (list(PATHS).index(k[0]), k[1] or "", servers.index(k[2])),
    )
    names = [LABELS[f] for f in frameworks]

    def grid(connections: int, cell: Callable[[dict[str, Any], str], str]) -> list[str]:
        rows = []
        for test, database, server in keys:
            row = [test, database or NONE, server]
            for framework in frameworks:
                found = index.get((test, database, server, framework, connections))
                row.append(cell(found, framework) if found else NONE)
            rows.append(row)
        return table(["test", "database", "server", *names], rows)

    def rps_of(row: dict[str, Any], framework: str) -> float | None:
        """Requests/s of ``framework`` in the same test, database, server and connections."""
        key = (row["test"], row["database"], row["server"], framework, row["connections"])
        return index.get(key, {}).get("rps")

    def ratio(top: float | None, bottom: float | None) -> str:
        return f"{top / bottom:.2f}{TIMES}" if top and bottom else NONE

    for connections in options["connections"]:
        at = f"{connections} connections"
        lines += [f"### Requests per second ({at})", ""]
        lines += grid(connections, lambda r, f: f"{r['rps']:,.0f}")
        lines += [f"### Each implementation / raw WSGI on the same server ({at})", ""]
        lines += grid(connections, lambda r, f: ratio(r["rps"], rps_of(r, "raw")))
        if "microback" in frameworks:
            lines += [f"### microback / each implementation on the same server ({at})", ""]
            lines += grid(connections, lambda r, f: ratio(rps_of(r, "microback"), r["rps"]))
        lines += [f"### Latency p50 / p99, ms ({at})", ""]
        lines += grid(connections, lambda r, f: f"{number(r['p50_ms'])} / {number(r['p99_ms'])}")
        lines += [f"### Server CPU time per request, µs ({at})", ""]
        lines += grid(connections, lambda r, f: number(r["cpu_us"], ".0f"))
        lines += targets(index, connections)

    errors = [r for r in summary if r["errors"]]
    lines += ["### Errors (non-2xx answers and socket errors, all rounds)", ""]
    if errors:
        lines.append(
            "A timeout is a response slower than 2 s (wrk's limit); details per round are in"
            f" `{entry['file']}`."
        )
        lines.append("")
        for r in errors:
            kinds = ", ".join(f"{k} {n}" for k, n in r.get("error_kinds", {}).items())
            where = [r["test"], r["database"], r["server"], LABELS[r["framework"]]]
            lines.append(
                f"- {' '.join(filter(None, where))} c{r['connections']}: {r['errors']}"
                + (f" ({kinds})" if kinds else "")
            )
    else:
        lines.append("None.")
    lines.append("")
    if entry.get("failures"):
        lines += ["Not measured (failed verification):", ""]
        lines += [f"- {failure}" for failure in entry["failures"]]
        lines.append("")

    lines += ["### Memory: RSS of the largest worker, MB, after start-up → peak", ""]
    rows = []
    for server in servers:
        for database in options["databases"]:
            row = [server, database]
            for framework in frameworks:
                found = next(
                    (
                        r
                        for r in summary
                        if r["server"] == server
                        and r["framework"] == framework
                        # The tests without a database ran on the first database's servers.
                        and (r["database"] or options["databases"][0]) == database
                    ),
                    None,
                )
                if found and found["rss_peak_mb"] is not None:
                    row.append(f"{found['rss_start_mb']:.0f} → {found['rss_peak_mb']:.0f}")
                else:
                    row.append(NONE)
            rows.append(row)
    lines += table(["server", "database", *names], rows, left=2)
    return lines


#: CPU time per request this many times its lowest across concurrency levels is flagged: the
#: cost of a request should not grow with the number of connections.
CPU_GROWTH_FLAG = 1.5


def concurrency_section(entry: dict[str, Any]) -> list[str]:
    """Throughput, p99 and CPU per request against the number of connections.

    Flagged: a request that costs more CPU as connections are added (worse than linear).
    """
    options = entry["options"]
    frameworks = [f for f in FRAMEWORK_ORDER if f in options["frameworks"]]
    levels = list(options["connections"])
    lines = ["", "## Throughput against concurrency", ""]
    lines += describe(entry)
    lines += [f"`{options['command']}`: medians of {options['rounds']} interleaved rounds.", ""]
    for test, database, server in sorted(
        {(r["test"], r["database"], r["server"]) for r in entry["summary"]},
        key=lambda k: (k[0], k[1] or "", k[2]),
    ):
        rows = {
            (r["framework"], r["connections"]): r
            for r in entry["summary"]
            if (r["test"], r["database"], r["server"]) == (test, database, server)
        }
        title = f"### {test}" + (f" ({database})" if database else "") + f" on `{server}`"
        lines += [title, ""]
        header = ["connections"]
        for framework in frameworks:
            header += [f"{LABELS[framework]} req/s", "p99 ms", "CPU µs"]
        body = []
        flags = []
        for framework in frameworks:
            measured = [
                (c, rows[(framework, c)]["cpu_us"]) for c in levels if (framework, c) in rows
            ]
            measured = [(c, cpu) for c, cpu in measured if cpu]
            if not measured:
                continue
            # From the cheapest level on: one connection costs more per request (no batching
            # of wake-ups), which is not a cost that grows with load.
            best_level, lowest = min(measured, key=lambda item: item[1])
            for level, cpu in measured:
                if level > best_level and cpu > CPU_GROWTH_FLAG * lowest:
                    flags.append(
                        f"- ⚠ {LABELS[framework]} at {level:,} connections: {cpu:.0f} µs of CPU "
                        f"per request, {cpu / lowest:.1f}x its lowest ({best_level:,} connections)"
                    )
        for level in levels:
            cells = [f"{level:,}"]
            for framework in frameworks:
                row = rows.get((framework, level))
                cells += (
                    [
                        number(row["rps"], ",.0f"),
                        number(row["p99_ms"], ".2f"),
                        number(row["cpu_us"], ".0f"),
                    ]
                    if row
                    else [NONE, NONE, NONE]
                )
            body.append(cells)
        lines += table(header, body, left=1)
        lines += flags or [
            f"No implementation's CPU time per request grows past {CPU_GROWTH_FLAG}x its lowest"
            " as connections are added."
        ]
        lines.append("")
    return lines


def targets(index: dict[tuple[Any, ...], dict[str, Any]], connections: int) -> list[str]:
    """The ratios issue 6 sets as targets, where this run has the numbers for them."""
    wanted = [
        ("json", None, "microback", "microback", "pywsgi", "raw", 2.0),
        ("param", None, "microback", "microback", "pywsgi", "raw", 2.0),
        ("plaintext", None, "microback", "microback", "pywsgi", "raw", 2.0),
        ("json", None, "microback", "microback", "microback", "falcon", 1.0),
        ("param", None, "microback", "microback", "microback", "falcon", 1.0),
        ("plaintext", None, "microback", "microback", "microback", "falcon", 1.0),
        ("json", None, "microback-w2", "microback", "gunicorn-w2", "flask", 3.0),
        ("param", None, "microback-w2", "microback", "gunicorn-w2", "flask", 3.0),
        ("plaintext", None, "microback-w2", "microback", "gunicorn-w2", "flask", 3.0),
        ("json", None, "microback", "microback", "gunicorn-w1", "flask", 3.0),
        ("param", None, "microback", "microback", "gunicorn-w1", "flask", 3.0),
    ]
    for test in ("db", "queries", "fortunes", "updates"):
        wanted.append((test, "postgresql", "microback", "microback", "microback", "flask", 1.5))
    rows = []
    for test, database, server, framework, peer_server, peer, goal in wanted:
        ours = index.get((test, database, server, framework, connections))
        theirs = index.get((test, database, peer_server, peer, connections))
        if not ours or not theirs:
            continue
        value = ours["rps"] / theirs["rps"]
        rows.append(
            [
                f"{test}{' ' + database if database else ''}",
                f"microback on `{server}`",
                f"{LABELS[peer]} on `{peer_server}`",
                f"{value:.2f}{TIMES}",
                f"{theirs['cpu_us'] / ours['cpu_us']:.2f}{TIMES}",
                f"{goal:.1f}{TIMES} {'met' if value >= goal else 'not met'}",
            ]
        )
    if not rows:
        return []
    header = ["test", "this", "against", "req/s ratio", "CPU/request ratio", "target (issue 6)"]
    note = (
        "The CPU ratio is the other's server CPU time per request over microback's: steadier"
        " than requests per second on a shared host, and the same when nothing interferes."
    )
    title = f"### Targets across servers ({connections} connections)"
    return [title, "", note, "", *table(header, rows)]


def inprocess_section(entry: dict[str, Any]) -> list[str]:
    options = entry["options"]
    frameworks = [f for f in FRAMEWORK_ORDER if f in options["frameworks"]]
    names = [LABELS[f] for f in frameworks]
    by = {(r["scenario"], r["framework"]): r["us"] for r in entry["summary"]}
    scenarios = list(dict.fromkeys(r["scenario"] for r in entry["summary"]))
    lines = ["", "## In-process: `app(environ, start_response)`, no network", ""]
    lines += describe(entry)
    lines.append(
        f"`{options['command']}`: µs per call, the best of {options['samples']} samples of"
        f" {options['seconds']} s each."
    )
    lines.append("")

    def grid(cell: Callable[[str, float], str]) -> list[str]:
        rows = [
            [s, *[cell(s, by[(s, f)]) if (s, f) in by else NONE for f in frameworks]]
            for s in scenarios
        ]
        return table(["scenario", *names], rows, left=1)

    lines += ["### µs per call", "", *grid(lambda s, us: f"{us:.1f}")]
    lines += ["### µs added over raw WSGI", ""]
    lines += grid(lambda s, us: f"+{us - by[(s, 'raw')]:.1f}" if (s, "raw") in by else NONE)
    if "microback" in frameworks:
        lines += ["### microback's speed relative to each (their µs / microback's µs)", ""]
        lines += grid(lambda s, us: f"{us / by[(s, 'microback')]:.2f}{TIMES}")
    routing = [s for s in scenarios if s.startswith("routing")]
    if len(routing) > 1:
        lines += ["### Routing: µs per call against the number of routes", ""]
        for framework in frameworks:
            values = [by[(s, framework)] for s in routing if (s, framework) in by]
            if len(values) == len(routing):
                steps = " → ".join(f"{us:.1f}" for us in values)
                growth = values[-1] / values[0]
                lines.append(
                    f"- {LABELS[framework]}: {steps} µs ({growth:.2f}{TIMES} the time for"
                    f" 100{TIMES} the routes)"
                )
        lines.append("")
    return lines


# --- charts ----------------------------------------------------------------------------------


def charts(entries: list[dict[str, Any]]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no charts; pip install matplotlib)", file=sys.stderr)
        return []
    latest = entries[-1]
    summary = latest["summary"]
    connections = latest["options"]["connections"][0]
    frameworks = [f for f in FRAMEWORK_ORDER if f in latest["options"]["frameworks"]]
    servers = list(latest["options"]["servers"])
    panels = sorted(
        {(r["test"], r["database"]) for r in summary},
        key=lambda k: (list(PATHS).index(k[0]), k[1] or ""),
    )
    columns = 3
    rows_ = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows_, columns, figsize=(5 * columns, 3.6 * rows_), squeeze=False)
    width = 0.8 / len(frameworks)
    for axis, (test, database) in zip(axes.flat, panels, strict=False):
        for i, framework in enumerate(frameworks):
            values = []
            for server in servers:
                found = [
                    r["rps"]
                    for r in summary
                    if (r["test"], r["database"], r["server"], r["framework"], r["connections"])
                    == (test, database, server, framework, connections)
                ]
                values.append(found[0] if found else 0)
            positions = [s + (i - (len(frameworks) - 1) / 2) * width for s in range(len(servers))]
            axis.bar(positions, values, width, label=LABELS[framework])
        axis.set_title(f"{test}" + (f" ({database})" if database else ""))
        axis.set_xticks(range(len(servers)), servers, fontsize=8)
        axis.set_ylabel("requests/s")
    throughput = _save(
        plt,
        figure,
        axes,
        len(panels),
        f"Requests per second, {connections} connections, commit {latest['commit'][:8]}",
        "throughput.png",
    )

    figure, axes = plt.subplots(rows_, columns, figsize=(5 * columns, 3.6 * rows_), squeeze=False)
    labels = [f"{e['commit'][:7]}{'+' if e.get('dirty') else ''}" for e in entries]
    for axis, (test, database) in zip(axes.flat, panels, strict=False):
        for framework in frameworks:
            values = []
            for entry in entries:
                found = [
                    r["rps"]
                    for r in entry["summary"]
                    if (r["test"], r["database"], r["server"], r["framework"], r["connections"])
                    == (test, database, "microback", framework, connections)
                ]
                values.append(found[0] if found else float("nan"))
            axis.plot(range(len(entries)), values, marker="o", label=LABELS[framework])
        axis.set_title(f"{test}" + (f" ({database})" if database else ""))
        axis.set_xticks(range(len(entries)), labels, rotation=45, fontsize=7)
        axis.set_ylabel("requests/s")
        axis.set_ylim(bottom=0)
    history = _save(
        plt,
        figure,
        axes,
        len(panels),
        f"On `microback serve` (1 process) over the commits, {connections} connections",
        "history.png",
    )
    return [throughput, history]


def _save(plt: Any, figure: Any, axes: Any, panels: int, title: str, name: str) -> Path:
    """Hide the unused panels, add the legend and the title, and write ``results/<name>``."""
    for axis in list(axes.flat)[panels:]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    path = record.RESULTS / name
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


if __name__ == "__main__":
    for path in render():
        print(f"rendered {path.relative_to(record.REPO)}")
