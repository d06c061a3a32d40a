"""docs/deployment.md shows the files the local cluster runs, not copies that could drift.

A fenced block right after ``<!-- file: PATH -->`` must be the file at PATH, byte for byte;
the systemd unit must start instances with the options deploy/local-cluster/ tests.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "deployment.md"
_INCLUDED = re.compile(r"<!-- file: (?P<path>\S+) -->\n```[\w-]*\n(?P<body>.*?)^```$", re.S | re.M)


def test_the_configuration_blocks_are_the_tested_files():
    found = {m["path"]: m["body"] for m in _INCLUDED.finditer(PAGE.read_text())}
    assert sorted(found) == [
        "deploy/local-cluster/haproxy.cfg",
        "deploy/local-cluster/pgbouncer.ini",
    ]
    for path, body in found.items():
        assert body == (ROOT / path).read_text(), f"docs/deployment.md's copy of {path} differs"


def test_the_systemd_unit_serves_with_the_options_of_the_tested_instances():
    cluster = (ROOT / "deploy" / "local-cluster" / "local_cluster.py").read_text()
    [unit] = re.findall(r"^ExecStart=.*microback serve .*$", PAGE.read_text(), re.M)
    for option in ("--workers", "--drain-delay", "--keepalive-timeout"):
        assert f'"{option}"' in cluster
        assert option in unit
    assert re.search(r"^DRAIN_DELAY = 2$", cluster, re.M) and "--drain-delay 2" in unit
    assert '"--keepalive-timeout", "30"' in cluster and "--keepalive-timeout 30" in unit
    assert '"--workers", "2"' in cluster and "--workers 2" in unit
