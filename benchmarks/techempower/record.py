"""Results as data: one JSON file per run in ``results/``, and a line per run in
``results/history.jsonl`` (the summary, without the individual measurements), each with the
commit, the date and the host.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = HERE / "results"
RESULTS_PATH = "benchmarks/techempower/results"
HISTORY = RESULTS / "history.jsonl"
PACKAGES = [
    "microback",
    "werkzeug",
    "gevent",
    "httptools",
    "peewee",
    "psycopg",
    "flask",
    "jinja2",
    "falcon",
    "bottle",
    "gunicorn",
    "itsdangerous",
]


def commit() -> dict[str, Any]:
    """The checkout's commit, its subject, and whether the tree had uncommitted changes."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        # Earlier results waiting to be committed do not change what is measured.
        "dirty": bool(
            git("status", "--porcelain", "--untracked-files=no", "--", ".", f":!{RESULTS_PATH}")
        ),
    }


def host() -> dict[str, Any]:
    """CPU model, cores, OS, Python and the versions of the packages that matter here."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
    }


def save(kind: str, data: dict[str, Any], summary: list[dict[str, Any]]) -> Path:
    """Write ``data`` as ``results/<kind>-<time>.json`` and append ``summary`` to the history."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    head = {"kind": kind, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **commit()}
    head["host"] = host()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{kind}-{stamp}.json"
    path.write_text(_dumps({**head, **data, "summary": summary}))
    entry = {**head, "file": path.name, "options": data.get("options", {}), "summary": summary}
    with HISTORY.open("a") as history:
        history.write(json.dumps(entry, separators=(",", ":")) + "\n")
    return path


def _dumps(data: dict[str, Any]) -> str:
    """JSON with one line per key, and one line per item of a list: small, and diffable."""
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value:
            items = ",\n  ".join(
                json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in value
            )
            lines.append(f"{json.dumps(key)}: [\n  {items}\n ]")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n " + ",\n ".join(lines) + "\n}\n"


def history(kind: str | None = None) -> list[dict[str, Any]]:
    """Every entry of the history (of one ``kind``), oldest first."""
    if not HISTORY.exists():
        return []
    entries = [json.loads(line) for line in HISTORY.read_text().splitlines() if line.strip()]
    return [entry for entry in entries if kind is None or entry["kind"] == kind]
