"""A local cluster: HAProxy, three `microback serve` instances, PgBouncer and a PostgreSQL.

Everything listens on loopback: HAProxy on 127.0.0.1, the instances (``--workers 2`` each) on
127.0.0.11, .12 and .13, PgBouncer (transaction pooling) and a PostgreSQL of its own, made in
the run directory, so that a test may restart it without touching anybody else's server. The
app is examples/bank, copied into the run directory (a deploy changes the copy).

    python deploy/local-cluster/local_cluster.py up RUN_DIR      # start it all; RUN_DIR/state.json
    python deploy/local-cluster/local_cluster.py check RUN_DIR   # the cluster tests, against it
    python deploy/local-cluster/local_cluster.py down RUN_DIR    # stop every process by its pid

The scripts ``up``, ``check`` and ``down`` beside this file do the same with a default
RUN_DIR. HAProxy and PgBouncer are Debian's (``apt-get install haproxy pgbouncer``); PostgreSQL
runs as the ``postgres`` user when this runs as root (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from string import Template
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # cluster_tools, beside this file, however this was loaded
from cluster_tools import (  # noqa: E402
    PROCESSES,
    ClusterError,
    alive,
    children,
    database_user,
    free_port,
    postgresql_answers,
    postgresql_bin,
    postgresql_connection,
    request,
    wait_for,
    wait_gone,
)

REPO = HERE.parent.parent
APP_SOURCE = REPO / "examples" / "bank" / "app.py"
INSTANCE_HOSTS = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
#: --drain-delay: longer than HAProxy's check interval (1 s) times its fall count (1).
DRAIN_DELAY = 2
DATABASE = "bank"
# Fixed keys for a cluster that only ever runs on loopback; production reads its own.
SECRET_KEY = "local-cluster-secret-key-shared-by-every-instance-0123456789"  # noqa: S105
PREVIOUS_SECRET_KEYS = "local-cluster-previous-key-still-verifying-old-cookies-0123"  # noqa: S105


@dataclasses.dataclass
class Cluster:
    """A running cluster, as ``up`` left it in RUN_DIR/state.json."""

    run_dir: Path
    frontend_port: int
    instance_port: int
    bouncer_port: int
    postgresql_port: int
    pids: dict[str, int] = dataclasses.field(default_factory=dict)
    python: str = sys.executable

    # --- addresses -------------------------------------------------------------------------

    @property
    def frontend(self) -> tuple[str, int]:
        return ("127.0.0.1", self.frontend_port)

    def instance(self, index: int) -> tuple[str, int]:
        """The address of instance ``index`` (1, 2 or 3)."""
        return (INSTANCE_HOSTS[index - 1], self.instance_port)

    @property
    def app_dir(self) -> Path:
        return self.run_dir / "app"

    def database_url(self, *, direct: bool = False, name: str = DATABASE) -> str:
        """The URL of the app's database: through PgBouncer, or ``direct`` to PostgreSQL."""
        if direct:
            return f"postgresql://postgres@127.0.0.1:{self.postgresql_port}/{name}"
        return (
            f"postgresql://postgres@127.0.0.1:{self.bouncer_port}/{name}?transaction_pooling=true"
        )

    def log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    # --- state -----------------------------------------------------------------------------

    def save(self) -> None:
        state = dataclasses.asdict(self)
        state["run_dir"] = str(self.run_dir)
        (self.run_dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> Cluster:
        try:
            state = json.loads((run_dir / "state.json").read_text())
        except FileNotFoundError:
            raise ClusterError(f"no cluster in {run_dir} (no state.json); run up first") from None
        state["run_dir"] = Path(state["run_dir"])
        return cls(**state)

    # --- processes -------------------------------------------------------------------------

    def app_environ(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MICROBACK_")}
        environ.update(
            DATABASE_URL=self.database_url(),
            MICROBACK_SECRET_KEY=SECRET_KEY,
            MICROBACK_PREVIOUS_SECRET_KEYS=PREVIOUS_SECRET_KEYS,
            MICROBACK_TRUSTED_PROXIES="127.0.0.1",
            MICROBACK_ALLOWED_HOSTS="localhost,127.0.0.1," + ",".join(INSTANCE_HOSTS),
            BANK_PASSWORD_ROUNDS="10",  # noqa: S106 (a bcrypt cost, not a password)
            PYTHONUNBUFFERED="1",
        )
        return environ

    def spawn(self, name: str, argv: list[str], *, user: str | None = None, **popen: Any) -> int:
        """Start ``argv`` with its output in logs/NAME.log; note and return its pid."""
        with open(self.log(name), "ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
                group=user and pwd.getpwnam(user).pw_gid,
                extra_groups=[] if user else None,
                **popen,
            )
        PROCESSES[process.pid] = process
        self.pids[name] = process.pid
        self.save()
        return process.pid

    def start_instance(self, index: int, *, direct_database: bool = False) -> None:
        """Start instance ``index``; ``direct_database``: to PostgreSQL, not through PgBouncer
        (benchmarks/cluster.py compares the two)."""
        host, port = self.instance(index)
        argv = [self.python, "-m", "microback", "serve", "app:app", "--host", host]
        argv += ["--port", str(port), "--workers", "2", "--drain-delay", str(DRAIN_DELAY)]
        # Longer than HAProxy keeps an idle connection to it, so HAProxy closes first.
        argv += ["--keepalive-timeout", "30"]
        environ = self.app_environ()
        if direct_database:
            environ["DATABASE_URL"] = self.database_url(direct=True)
        self.spawn(f"i{index}", argv, cwd=self.app_dir, env=environ)

    def start_postgresql(self) -> None:
        data = self.run_dir / "postgresql"
        argv = [str(postgresql_bin("postgres")), "-D", str(data), "-p", str(self.postgresql_port)]
        argv += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}"]
        argv += ["-c", "max_connections=100"]
        self.spawn("postgresql", argv, user=database_user())
        wait_for(
            lambda: postgresql_answers(self.database_url(direct=True, name="postgres")),
            20,
            "PostgreSQL to accept connections",
            self.log("postgresql"),
        )

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Send ``sig`` to the process ``name`` and wait for it to end (SIGKILL after timeout)."""
        pid = self.pids.pop(name, None)
        self.save()
        if pid is None or not alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if not wait_gone(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)

    def restart_postgresql(self, outage: float) -> None:
        """Stop PostgreSQL (a fast shutdown: open transactions are rolled back), stay down for
        ``outage`` seconds, start it again."""
        self.stop("postgresql", signal.SIGINT)
        time.sleep(outage)
        self.start_postgresql()

    def kill_instance(self, index: int) -> list[int]:
        """SIGKILL instance ``index``: its master and its workers, as a crash of the host would."""
        pid = self.pids.pop(f"i{index}")
        self.save()
        victims = [pid, *children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        for victim in victims:
            wait_gone(victim, 5)
        return victims

    # --- HAProxy's runtime API -------------------------------------------------------------

    def haproxy(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.run_dir / "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """HAProxy's view of each instance: its ``status`` (UP, DOWN, DRAIN, MAINT...), ``scur``
        (requests it is serving now), ``stot`` (requests sent to it in all)..."""
        lines = self.haproxy("show stat").lstrip("# ").splitlines()
        header = lines[0].split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {row["svname"]: row for row in rows if row["pxname"] == "instances"}

    def wait_status(self, server: str, status: str, timeout: float) -> None:
        wait_for(
            lambda: self.servers()[server]["status"] == status,
            timeout,
            f"HAProxy to see {server} {status}",
            self.log("haproxy"),
        )

    # --- a rolling deploy ------------------------------------------------------------------

    def write_version(self, version: str) -> None:
        """Put new code in place: the app's copy with ``VERSION = "<version>"``."""
        path = self.app_dir / "app.py"
        code, count = re.subn(
            r'^VERSION = ".*"$', f'VERSION = "{version}"', path.read_text(), flags=re.MULTILINE
        )
        if count != 1:
            raise ClusterError(f"{path} has no VERSION line to change")
        path.write_text(code)

    def rolling_deploy(self, version: str) -> None:
        """Deploy ``version`` one instance at a time, each drained before its reload.

        For each instance: HAProxy stops sending it requests (``state drain``) and the requests
        it was serving finish; SIGHUP makes its master start workers with the new code and
        retire the old ones (whose readiness answers 503 from then on); once the instance
        itself answers with the new version, HAProxy takes it back, after its readiness checks
        pass (``rise 2``).
        """
        self.write_version(version)
        for index in (1, 2, 3):
            server = f"i{index}"
            self.haproxy(f"set server instances/{server} state drain")
            wait_for(
                lambda s=server: self.servers()[s]["scur"] == "0",
                30,
                f"{server}'s requests to finish",
                self.log("haproxy"),
            )
            os.kill(self.pids[server], signal.SIGHUP)
            wait_for(
                lambda i=index: self.versions_of(i) == {version},
                60,
                f"{server} to serve version {version}",
                self.log(server),
            )
            self.haproxy(f"set server instances/{server} state ready")
            self.wait_status(server, "UP", 10)

    def versions_of(self, index: int, tries: int = 6) -> set[str]:
        """The versions instance ``index`` answers with, over ``tries`` new connections."""
        seen = set()
        for _ in range(tries):
            status, headers, _ = request(self.instance(index), "GET", "/version")
            seen.add(headers.get("x-app-version", "") if status == 200 else f"status {status}")
        return seen


# --- up, check, down ---------------------------------------------------------------------------


def up(run_dir: Path) -> Cluster:
    """Start PostgreSQL, PgBouncer, the three instances, a jobs worker and HAProxy."""
    for tool in ("haproxy", "pgbouncer"):
        if shutil.which(tool) is None:
            raise ClusterError(f"{tool} is not installed; apt-get install -y {tool}")
    if (run_dir / "state.json").exists():
        raise ClusterError(f"{run_dir} holds a cluster already; run down first")
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o755)  # PostgreSQL and PgBouncer run as another user and read their files
    (run_dir / "logs").mkdir(exist_ok=True)
    (run_dir / "logs").chmod(0o777)
    (run_dir / "app").mkdir(exist_ok=True)
    shutil.copy(APP_SOURCE, run_dir / "app" / "app.py")
    instance_port = free_port(INSTANCE_HOSTS)
    cluster = Cluster(
        run_dir=run_dir,
        frontend_port=free_port(("127.0.0.1",)),
        instance_port=instance_port,
        bouncer_port=free_port(("127.0.0.1",)),
        postgresql_port=free_port(("127.0.0.1",)),
    )
    cluster.save()
    try:
        _start(cluster)
    except BaseException:
        down(run_dir, remove=False)
        raise
    return cluster


def _start(cluster: Cluster) -> None:
    run_dir = cluster.run_dir
    user = database_user()
    data = run_dir / "postgresql"
    data.mkdir()
    if user:
        shutil.chown(data, user, user)
    initdb = [str(postgresql_bin("initdb")), "-D", str(data), "-U", "postgres", "-A", "trust"]
    subprocess.run(
        [*initdb, "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
        user=user,
        group=user,
        extra_groups=[] if user else None,
    )
    cluster.start_postgresql()
    with postgresql_connection(cluster.database_url(direct=True, name="postgres")) as admin:
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    values = {
        "run_dir": str(run_dir),
        "port": str(cluster.bouncer_port),
        "postgresql_port": str(cluster.postgresql_port),
        "frontend": "{}:{}".format(*cluster.frontend),
        **{f"instance{i}": "{}:{}".format(*cluster.instance(i)) for i in (1, 2, 3)},
    }
    for name in ("pgbouncer.ini", "haproxy.cfg"):
        text = Template((HERE / name).read_text()).substitute(values)
        (run_dir / name).write_text(text)
    (run_dir / "userlist.txt").write_text('"postgres" ""\n')
    cluster.spawn("pgbouncer", ["pgbouncer", str(run_dir / "pgbouncer.ini")], user=user)
    wait_for(
        lambda: postgresql_answers(cluster.database_url().partition("?")[0]),
        10,
        "PgBouncer to accept connections",
        cluster.log("pgbouncer"),
    )
    tables = [cluster.python, "-m", "microback", "db", "create-tables", "app:app"]
    with open(cluster.log("create-tables"), "ab") as log:
        subprocess.run(
            tables, check=True, cwd=cluster.app_dir, env=cluster.app_environ(), stdout=log
        )
    for index in (1, 2, 3):
        cluster.start_instance(index)
    worker = [cluster.python, "-m", "microback", "worker", "app:app", "--concurrency", "20"]
    cluster.spawn("worker", worker, cwd=cluster.app_dir, env=cluster.app_environ())
    for index in (1, 2, 3):
        wait_for(
            lambda i=index: cluster.versions_of(i, tries=1) == {"1"},
            60,
            f"instance {index} to answer",
            cluster.log(f"i{index}"),
        )
    cluster.spawn("haproxy", ["haproxy", "-f", str(run_dir / "haproxy.cfg"), "-db"])
    wait_for(
        lambda: (run_dir / "haproxy.sock").exists(), 10, "HAProxy to start", cluster.log("haproxy")
    )
    for index in (1, 2, 3):
        cluster.wait_status(f"i{index}", "UP", 10)


def write_configs(cluster: Cluster) -> None:
    """Fill in the placeholders of pgbouncer.ini and haproxy.cfg into RUN_DIR."""
    values = {
        "run_dir": str(cluster.run_dir),
        "port": str(cluster.bouncer_port),
        "postgresql_port": str(cluster.postgresql_port),
        "frontend": "{}:{}".format(*cluster.frontend),
        **{f"instance{i}": "{}:{}".format(*cluster.instance(i)) for i in (1, 2, 3)},
    }
    for name in ("pgbouncer.ini", "haproxy.cfg"):
        text = Template((HERE / name).read_text()).substitute(values)
        (cluster.run_dir / name).write_text(text)
    (cluster.run_dir / "userlist.txt").write_text('"postgres" ""\n')


def start_pgbouncer(cluster: Cluster) -> None:
    argv = ["pgbouncer", str(cluster.run_dir / "pgbouncer.ini")]
    cluster.spawn("pgbouncer", argv, user=database_user())
    wait_for(
        lambda: postgresql_answers(cluster.database_url(name="postgres").partition("?")[0]),
        10,
        "PgBouncer to accept connections",
        cluster.log("pgbouncer"),
    )


def bouncer(run_dir: Path, postgresql_port: int) -> Cluster:
    """Start only PgBouncer, in front of the PostgreSQL on ``postgresql_port`` (which must
    trust local connections of ``postgres``): to run the test suite through it."""
    if (run_dir / "state.json").exists():
        raise ClusterError(f"{run_dir} holds a cluster already; run down first")
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o755)
    (run_dir / "logs").mkdir(exist_ok=True)
    (run_dir / "logs").chmod(0o777)
    cluster = Cluster(run_dir, 0, 0, free_port(("127.0.0.1",)), postgresql_port)
    cluster.save()
    try:
        write_configs(cluster)
        start_pgbouncer(cluster)
    except BaseException:
        down(run_dir, remove=False)
        raise
    return cluster


#: The order processes are stopped in: the proxy first, the database last.
STOP_ORDER = ("haproxy", "i1", "i2", "i3", "worker", "pgbouncer", "postgresql")


def down(run_dir: Path, *, remove: bool = True) -> None:
    """Stop every process of the cluster by its pid, then (``remove``) delete RUN_DIR."""
    cluster = Cluster.load(run_dir)
    names = sorted(cluster.pids, key=lambda n: STOP_ORDER.index(n) if n in STOP_ORDER else 0)
    for name in names:
        # PostgreSQL: SIGINT is its fast shutdown (SIGTERM waits for clients to leave).
        cluster.stop(name, signal.SIGINT if name == "postgresql" else signal.SIGTERM)
    if remove:
        shutil.rmtree(run_dir)
    else:
        (run_dir / "state.json").unlink()


def check(run_dir: Path, pytest_args: list[str]) -> int:
    """Run the cluster tests (tests/cluster/) against the cluster running in RUN_DIR."""
    Cluster.load(run_dir)
    environ = dict(os.environ, MICROBACK_CLUSTER_DIR=str(run_dir))
    argv = [sys.executable, "-m", "pytest", "-m", "cluster", "-p", "no:cacheprovider"]
    argv += [str(REPO / "tests" / "cluster"), *pytest_args]
    return subprocess.run(argv, cwd=REPO, env=environ).returncode


def main(argv: list[str]) -> int:
    usage = (
        "usage: local_cluster.py up|check|down [RUN_DIR] [pytest options for check]\n"
        "       local_cluster.py bouncer RUN_DIR POSTGRESQL_PORT  (PgBouncer alone; down stops it)"
    )
    if not argv or argv[0] not in ("up", "check", "down", "bouncer"):
        print(usage, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    run_dir = Path(rest.pop(0) if rest and not rest[0].startswith("-") else default_run_dir())
    try:
        if command == "up":
            cluster = up(run_dir.resolve())
            print(f"cluster up in {cluster.run_dir}: http://%s:%d/ (HAProxy)" % cluster.frontend)
            for index in (1, 2, 3):
                print(
                    f"  instance {index}: http://%s:%d/ (pid {cluster.pids[f'i{index}']})"
                    % cluster.instance(index)
                )
            print(
                f"  PgBouncer 127.0.0.1:{cluster.bouncer_port}, "
                f"PostgreSQL 127.0.0.1:{cluster.postgresql_port}; logs in {run_dir / 'logs'}"
            )
            return 0
        if command == "bouncer":
            if len(rest) != 1 or not rest[0].isdigit():
                print(usage, file=sys.stderr)
                return 2
            cluster = bouncer(run_dir.resolve(), int(rest[0]))
            print(cluster.database_url(name="postgres"))
            return 0
        if command == "down":
            down(run_dir.resolve())
            print(f"cluster in {run_dir} stopped")
            return 0
        return check(run_dir.resolve(), rest)
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1


def default_run_dir() -> Path:
    default = Path(tempfile.gettempdir()) / "microback-local-cluster"
    return Path(os.environ.get("MICROBACK_CLUSTER_DIR", default))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
