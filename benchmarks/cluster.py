"""The local cluster's speed: the mixed load through HAProxy on 1, 2 and 3 instances, and what
PgBouncer and HAProxy each add to a request.

Brings up deploy/local-cluster/ (HAProxy, three ``microback serve --workers 2`` instances of
examples/bank, PgBouncer in transaction mode, PostgreSQL) in a temporary directory, then:

1. **Scaling.** The tests' mixed load (deploy/local-cluster/load.py: 50% balance reads, 40%
   transfers under Idempotency-Key, 10% log-ins with bcrypt at cost 10), from ``--clients``
   keep-alive clients, through HAProxy with 1, 2 and 3 instances in service (the others set to
   maintenance through HAProxy's runtime API), ``--rounds`` interleaved rounds of ``--seconds``
   each: answered requests per second and the 99th percentile latency (medians of the rounds).
2. **Cost per request.** One client sending ``GET /api/me`` (a token lookup and an account
   read) one after another: to instance 1 through PgBouncer, to instance 1 restarted with
   ``DATABASE_URL`` straight to PostgreSQL, and through HAProxy (to instances on PgBouncer);
   mean and median latency, rounds interleaved.

Everything (PostgreSQL, PgBouncer, HAProxy, six worker processes and the load generator) shares
the same cores, so the figures say how the parts compare on this machine, not what three real
hosts would do: past one instance, more instances only split the same CPUs.

    .venv/bin/python benchmarks/cluster.py                # about 4 minutes
    .venv/bin/python benchmarks/cluster.py --seconds 5 --rounds 1
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

sys.path.insert(0, str(ROOT / "deploy" / "local-cluster"))
import cluster_load as load  # noqa: E402
import local_cluster  # noqa: E402

PASSWORD = "correct horse battery"


def in_service(cluster: Any, count: int) -> None:
    """Leave the first ``count`` instances in HAProxy's service, the others in maintenance."""
    for index in (1, 2, 3):
        state = "ready" if index <= count else "maint"
        cluster.haproxy(f"set server instances/i{index} state {state}")
    for index in range(1, count + 1):
        cluster.wait_status(f"i{index}", "UP", 30)


def mixed_load(cluster: Any, customers: list[Any], seconds: float) -> dict[str, float]:
    with load.Load(cluster.frontend, customers, seconds) as running:
        outcomes = running.wait()
    answered = [o for o in outcomes if not o.failed]
    latencies = sorted(o.ended - o.started for o in outcomes)
    return {
        "requests_per_second": len(answered) / seconds,
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "failed": len(outcomes) - len(answered),
    }


def sequential(address: tuple[str, int], token: str, count: int) -> list[float]:
    client = load.Client(address, load.Customer("", "", 0, token))
    times = []
    for _ in range(count):
        outcome = client.step("read", [], None)  # type: ignore[arg-type]
        if outcome.status != 200:
            raise RuntimeError(f"GET /api/me: {outcome}")
        times.append(outcome.ended - outcome.started)
    client.close()
    return times


def restart_instance(cluster: Any, *, direct: bool) -> None:
    cluster.stop("i1")
    cluster.start_instance(1, direct_database=direct)
    local_cluster.wait_for(lambda: cluster.versions_of(1, tries=1) == {"1"}, 60, "instance 1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=500, help="per cost measurement")
    options = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="microback-cluster-bench-"))
    cluster = local_cluster.up(run_dir)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    try:
        customers = [
            load.sign_up(cluster.frontend, f"bench{n}@example.org", PASSWORD)
            for n in range(options.clients)
        ]
        scaling: dict[int, list[dict[str, float]]] = {1: [], 2: [], 3: []}
        for _ in range(options.rounds):
            for count in (1, 2, 3):
                in_service(cluster, count)
                scaling[count].append(mixed_load(cluster, customers, options.seconds))
                print(f"{count} instance(s): {scaling[count][-1]}", flush=True)
        in_service(cluster, 3)
        costs: dict[str, list[float]] = {"pgbouncer": [], "direct": [], "haproxy": []}
        token = customers[0].token
        for _ in range(options.rounds):
            restart_instance(cluster, direct=False)
            costs["pgbouncer"] += sequential(cluster.instance(1), token, options.requests)
            costs["haproxy"] += sequential(cluster.frontend, token, options.requests)
            restart_instance(cluster, direct=True)
            costs["direct"] += sequential(cluster.instance(1), token, options.requests)
        results["load_average_after"] = os.getloadavg()
    finally:
        local_cluster.down(run_dir)

    print(
        f"\nMixed load through HAProxy, {options.clients} clients, medians of "
        f"{options.rounds} x {options.seconds:g} s (load average before: "
        f"{results['load_average'][0]:.1f}, after: {results['load_average_after'][0]:.1f})"
    )
    print("| instances | requests/s | p99 (ms) | failed |\n|---|---|---|---|")
    results["scaling"] = {}
    for count, runs in scaling.items():
        row = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        results["scaling"][count] = row
        print(
            f"| {count} | {row['requests_per_second']:.0f} | {row['p99_ms']:.0f} "
            f"| {row['failed']:.0f} |"
        )
    print(f"\nGET /api/me, one client, {options.rounds} x {options.requests} requests each")
    print("| path | mean (ms) | median (ms) |\n|---|---|---|")
    names = {
        "direct": "instance -> PostgreSQL",
        "pgbouncer": "instance -> PgBouncer -> PostgreSQL",
        "haproxy": "HAProxy -> instance -> PgBouncer -> PostgreSQL",
    }
    results["cost_ms"] = {}
    for key, label in names.items():
        mean, median = 1000 * statistics.mean(costs[key]), 1000 * statistics.median(costs[key])
        results["cost_ms"][key] = {"mean": mean, "median": median}
        print(f"| {label} | {mean:.2f} | {median:.2f} |")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = ROOT / "benchmarks" / "results" / f"cluster-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n(written to {out.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
