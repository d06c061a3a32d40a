"""A mixed load on the cluster (reads, transfers, log-ins) that records every request's outcome.

Each client thread is one customer: its own account, API token and keep-alive connection to
HAProxy. It reads its balance, moves 1 to another account under a fresh Idempotency-Key, or
logs in with its password, in the proportions of ``MIX``, until told to stop or its deadline.
Nothing is retried here: a request that fails is counted, with its time, so a test can say
when and why. A transfer whose answer was not seen can be resent afterwards with its key
(``unresolved_transfers``): the bank then says what happened to it, once.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import random
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

MIX = (("read", 5), ("transfer", 4), ("login", 1))


@dataclasses.dataclass(frozen=True)
class Customer:
    email: str
    password: str
    account: int
    token: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: str
    started: float  # time.monotonic()
    ended: float
    status: int  # 0: no answer (the connection failed)
    retry_after: str | None
    version: str | None
    detail: str
    key: str | None = None  # a transfer's Idempotency-Key
    body: Any = None
    account: int = 0  # the customer's

    @property
    def failed(self) -> bool:
        return self.status not in (200, 201)


def sign_up(address: tuple[str, int], email: str, password: str) -> Customer:
    """A new customer of the bank at ``address``, with an API token."""
    body = {"email": email, "password": password}
    answers = []
    for path in ("/api/signup", "/api/tokens"):
        client = Client(address, Customer(email, password, 0, ""))
        outcome = client.send("sign-up", "POST", path, body)
        client.close()
        if outcome.status != 201:
            raise RuntimeError(f"POST {path}: {outcome.status} {outcome.detail}")
        answers.append(json.loads(outcome.detail))
    return Customer(email, password, answers[0]["account"], answers[1]["token"])


class Client:
    """One customer's connection to ``address``, reconnecting after a failure."""

    def __init__(self, address: tuple[str, int], customer: Customer) -> None:
        self.address = address
        self.customer = customer
        self.connection: http.client.HTTPConnection | None = None

    def send(self, kind: str, method: str, path: str, body: Any = None, **headers: str) -> Outcome:
        started = time.monotonic()
        sent = {"Host": "localhost", "Content-Type": "application/json", **headers}
        data = None if body is None else json.dumps(body).encode()
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(*self.address, timeout=30)
            self.connection.request(method, path, body=data, headers=sent)
            response = self.connection.getresponse()
            payload = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Outcome(
                kind,
                started,
                time.monotonic(),
                0,
                None,
                None,
                repr(exc),
                headers.get("Idempotency-Key"),
                body,
                self.customer.account,
            )
        return Outcome(
            kind,
            started,
            time.monotonic(),
            response.status,
            response.getheader("Retry-After"),
            response.getheader("X-App-Version"),
            payload[:300].decode(errors="replace"),
            headers.get("Idempotency-Key"),
            body,
            self.customer.account,
        )

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def step(self, kind: str, accounts: Sequence[int], rng: random.Random) -> Outcome:
        bearer = f"Bearer {self.customer.token}"
        if kind == "read":
            return self.send(kind, "GET", "/api/me", Authorization=bearer)
        if kind == "transfer":
            target = rng.choice([a for a in accounts if a != self.customer.account])
            key = str(uuid.uuid4())
            return self.send(
                kind,
                "POST",
                "/api/transfers",
                {"to": target, "amount": 1},
                Authorization=bearer,
                **{"Idempotency-Key": key},
            )
        credentials = {"email": self.customer.email, "password": self.customer.password}
        return self.send(kind, "POST", "/api/login", credentials)


class Load:
    """``len(customers)`` threads sending the mixed load to ``address`` for up to ``seconds``."""

    def __init__(
        self, address: tuple[str, int], customers: Sequence[Customer], seconds: float
    ) -> None:
        self.address = address
        self.customers = customers
        self.deadline = time.monotonic() + seconds
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(customer, n), daemon=True)
            for n, customer in enumerate(customers)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return self.outcomes

    def wait(self) -> list[Outcome]:
        """Let the load run to its deadline, then stop it."""
        self._stop.wait(max(0.0, self.deadline - time.monotonic()))
        return self.stop()

    def _run(self, customer: Customer, seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 (which account to pay, not a secret)
        client = Client(self.address, customer)
        accounts = [c.account for c in self.customers]
        kinds = [kind for kind, weight in MIX for _ in range(weight)]
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            outcome = client.step(rng.choice(kinds), accounts, rng)
            with self._lock:
                self.outcomes.append(outcome)
            if outcome.status in (0, 503):
                time.sleep(0.05)  # as a client would back off; the load stays bounded
        client.close()


def summary(outcomes: Sequence[Outcome]) -> str:
    """One line: how many requests of each kind, and of each status."""
    by_kind: dict[str, int] = {}
    by_status: dict[int, int] = {}
    for outcome in outcomes:
        by_kind[outcome.kind] = by_kind.get(outcome.kind, 0) + 1
        by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(by_kind.items()))
    statuses = ", ".join(f"{n}x{status}" for status, n in sorted(by_status.items()))
    return f"{len(outcomes)} requests ({kinds}); statuses {statuses}"


def unresolved_transfers(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Transfers whose outcome the client did not learn (no answer, or a 5xx)."""
    return [o for o in outcomes if o.kind == "transfer" and (o.status == 0 or o.status >= 500)]
