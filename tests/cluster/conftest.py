"""The local cluster of deploy/local-cluster/, brought up once for the tests of this folder.

With ``MICROBACK_CLUSTER_DIR`` naming a running cluster (``deploy/local-cluster/check`` sets
it), the tests use that one and leave it running; otherwise they bring one up in a temporary
directory and stop every process of it at the end. The tests are marked ``cluster``: the
README's command leaves them out, ``.ci/run`` runs them after it (``-m cluster``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

# deploy/local-cluster/ has a dash: its modules are imported from the folder itself.
sys.path.insert(0, str(REPO / "deploy" / "local-cluster"))
import cluster_load as load  # noqa: E402
import local_cluster  # noqa: E402

PASSWORD = "correct horse battery"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = os.environ.get("MICROBACK_CLUSTER_DIR")
    if running:
        yield local_cluster.Cluster.load(Path(running))
        return
    # Not under pytest's tmp dir: PostgreSQL and PgBouncer run as another user and must be
    # able to reach it (pytest makes its directories private to this user; up() opens this).
    run_dir = Path(tempfile.mkdtemp(prefix="microback-cluster-"))
    cluster = local_cluster.up(run_dir)
    try:
        yield cluster
    finally:
        local_cluster.down(run_dir)


def sign_up(cluster: Any, email: str) -> Any:
    """A new customer, signed up through HAProxy, with an API token."""
    return load.sign_up(cluster.frontend, email, PASSWORD)


@pytest.fixture(scope="session")
def customers(cluster: Any) -> list[Any]:
    """Eight customers for the loads, made once."""
    tag = os.urandom(3).hex()
    return [sign_up(cluster, f"load{n}-{tag}@example.org") for n in range(8)]
