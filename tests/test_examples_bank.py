"""examples/bank, the app of the local cluster, on each backend MICROBACK_TEST_DATABASES selects.

The cluster tests (tests/cluster/) run it as three instances; these check its rules in one
process: transfers move money once per Idempotency-Key, never below zero, each with its job.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from microback.testing import TestClient, database_servers, database_url, fresh_database

__all__ = ["database_servers", "database_url"]  # fixtures, imported for pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "bank" / "app.py"
PASSWORD = "correct horse"


@pytest.fixture
def bank(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("BANK_PASSWORD_ROUNDS", "10")
    monkeypatch.setenv("MICROBACK_SECRET_KEY", "bank-example-test-secret-key-0123456789")
    monkeypatch.chdir(tmp_path)  # its default SQLite file would be made here
    spec = importlib.util.spec_from_file_location("example_bank", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_bank"] = module
    spec.loader.exec_module(module)
    with fresh_database(module.db, database_url):
        yield module
    sys.modules.pop("example_bank", None)


def customer(client, email):
    account = client.post_json("/api/signup", {"email": email, "password": PASSWORD}).json
    token = client.post_json("/api/tokens", {"email": email, "password": PASSWORD}).json
    return account["account"], {"Authorization": f"Bearer {token['token']}"}


def test_a_transfer_moves_money_once_per_key_and_runs_its_job(bank):
    client = TestClient(bank.app)
    ada, ada_auth = customer(client, "ada@example.org")
    bob, bob_auth = customer(client, "bob@example.org")
    key = {**ada_auth, "Idempotency-Key": "2f6c1e0a"}
    first = client.post_json("/api/transfers", {"to": bob, "amount": 5}, headers=key)
    again = client.post_json("/api/transfers", {"to": bob, "amount": 5}, headers=key)
    assert first.status_int == again.status_int == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json == {"id": 1, "from": ada, "to": bob, "amount": 5}
    assert client.get("/api/me", headers=ada_auth).json["balance"] == 995
    assert client.get("/api/me", headers=bob_auth).json["balance"] == 1005
    assert first.headers["X-App-Version"] == bank.VERSION

    assert bank.jobs.run_pending() == 1
    assert [r.transfer_id for r in bank.Receipt.select()] == [1]


def test_a_refused_transfer_changes_nothing(bank):
    client = TestClient(bank.app)
    ada, ada_auth = customer(client, "ada@example.org")
    bob, _ = customer(client, "bob@example.org")
    too_much = client.post_json(
        "/api/transfers", {"to": bob, "amount": 1000}, headers=ada_auth
    ).json
    assert too_much["id"] == 1
    broke = client.post_json(
        "/api/transfers", {"to": bob, "amount": 1}, headers=ada_auth, status=409
    )
    assert broke.json["detail"] == "the balance is less than 1"
    nobody = client.post_json(
        "/api/transfers", {"to": 99, "amount": 1}, headers=ada_auth, status=404
    )
    assert nobody.json["detail"] == "there is no account 99"
    itself = client.post_json(
        "/api/transfers", {"to": ada, "amount": 1}, headers=ada_auth, status=400
    )
    assert itself.json["detail"] == "the field 'to' must be another account"
    assert sum(a.balance for a in bank.Account.select()) == 2000
    assert bank.Transfer.select().count() == 1
    assert bank.jobs.run_pending() == 1


def test_a_session_logs_in_and_out_with_its_csrf_token(bank):
    client = TestClient(bank.app)
    customer(client, "ada@example.org")
    token = client.post_json("/api/login", {"email": "ada@example.org", "password": PASSWORD})
    assert client.get("/api/me").json["email"] == "ada@example.org"
    client.post("/api/logout", status=403)  # no CSRF token
    client.post("/api/logout", headers={"X-CSRF-Token": token.json["csrf_token"]}, status=204)
    client.get("/api/me", status=401)
    assert client.get("/readyz").json == {"status": "ok"}
