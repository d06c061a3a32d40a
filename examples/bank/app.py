"""Bank: accounts, transfers under Idempotency-Key, a job per transfer, several instances.

The app that ``deploy/local-cluster/`` runs as three instances behind HAProxy, with one
PostgreSQL behind PgBouncer (docs/deployment.md). It does what a real service does across
instances: sign-up and log-in with a session cookie, API tokens, writes under
``Idempotency-Key``, a background job per write, and an invariant to check afterwards: money
only moves between accounts, so their total is always ``OPENING_BALANCE`` times their number.

From this folder (the database file is created here; ``DATABASE_URL`` names another)::

    export MICROBACK_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
    microback db create-tables app.py:app
    microback serve app.py:app --workers 2
    curl localhost:8000/api/signup --json '{"email": "ada@example.org",
        "password": "correct horse"}'
    curl localhost:8000/api/signup --json '{"email": "bob@example.org",
        "password": "correct horse"}'
    TOKEN=$(curl localhost:8000/api/tokens --json '{"email": "ada@example.org",
        "password": "correct horse"}' |
        python -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    # Sent twice with one key, as a client that lost the first answer would: one transfer.
    curl localhost:8000/api/transfers -H "Authorization: Bearer $TOKEN" --json '{"to": 2,
        "amount": 5}' -H "Idempotency-Key: 2f6c1e0a"
    curl localhost:8000/api/transfers -H "Authorization: Bearer $TOKEN" --json '{"to": 2,
        "amount": 5}' -H "Idempotency-Key: 2f6c1e0a"
    curl localhost:8000/api/me -H "Authorization: Bearer $TOKEN"  # balance 995

Each transfer's job writes its receipt; run the jobs beside the server::

    microback worker app.py:app

``MICROBACK_PREVIOUS_SECRET_KEYS`` lists keys that still verify session cookies during a key
rotation (see ``previous_secret_keys`` in docs/settings.md); ``BANK_PASSWORD_ROUNDS`` lowers
the bcrypt cost for tests (12 by default). deploy/local-cluster/ runs it as three instances.
"""

import os

from microback import App, abort, enable_health, enable_openapi
from microback.db import Database, fields
from microback.integrations import Idempotency
from microback.jobs import Jobs
from microback.security import Auth, Csrf, csrf_token, login_required, rate_limit, requires_scope

#: Changed by a deploy: every answer says which code served it (``X-App-Version``).
VERSION = "1"
OPENING_BALANCE = 1000
SCOPES = ("bank",)

app = App()
enable_openapi(app, title="Bank", version="1.0.0")
db = Database(app, "sqlite:///bank.db")  # DATABASE_URL replaces it
auth = Auth(app, db, password_rounds=int(os.environ.get("BANK_PASSWORD_ROUNDS", "12")))
Csrf(app)  # cookie sessions: a POST needs the token; a Bearer token needs none
idempotency = Idempotency(app, db)
# A receipt takes milliseconds: a job whose worker lost it (to a database restart, say) is
# leased again after 10 s rather than the default minute.
jobs = Jobs(app, db, lease=10)
enable_health(app)  # /livez, and /readyz for the load balancer's checks


class Account(db.Model):
    owner = fields.ForeignKeyField(auth.User, unique=True, on_delete="CASCADE")
    balance = fields.IntegerField(default=OPENING_BALANCE)


class Transfer(db.Model):
    source = fields.ForeignKeyField(Account, backref="sent")
    target = fields.ForeignKeyField(Account, backref="received")
    amount = fields.IntegerField()


class Receipt(db.Model):
    """What the job of a transfer writes: one per transfer, however often the job runs."""

    job_id = fields.CharField(max_length=36, unique=True)
    transfer = fields.ForeignKeyField(Transfer, unique=True)


@jobs.task
def record_receipt(job, transfer_id):
    Receipt.insert(job_id=job.id, transfer=transfer_id).on_conflict_ignore().execute()


@app.after_request
def say_version(request, response):
    response.headers["X-App-Version"] = VERSION
    return response


@app.get("/version")
def version(request):
    return {"version": VERSION}


def credentials(request):
    data = request.json_object
    return data.get_str("email", max_length=254), data.get_str("password", max_length=200)


@app.post("/api/signup")
@rate_limit("1000/hour", scope="signup")
def signup(request):
    email, password = credentials(request)
    if "@" not in email:
        abort(400, "the e-mail address is not valid")
    if len(password) < 8:
        abort(400, "the password must be at least 8 characters long")
    user = auth.create_user(email, password)  # a taken address is a 409
    account = Account.create(owner=user)
    return {"user": user.id, "account": account.id, "balance": account.balance}, 201


def authenticated(request):
    user = auth.authenticate(request, *credentials(request))  # throttled: 429, on every instance
    if user is None:
        abort(401, "wrong e-mail address or password")
    return user


@app.post("/api/login")
def login(request):
    """Log in with a session cookie; the answer holds the CSRF token its POSTs must carry."""
    auth.login(request, authenticated(request))
    return {"csrf_token": csrf_token(request)}


@app.post("/api/logout")
@login_required
def logout(request):
    auth.logout(request)
    return "", 204


@app.post("/api/logout-everywhere")
@login_required
def logout_everywhere(request):
    auth.logout_everywhere(request.user)
    auth.logout(request)
    return "", 204


@app.post("/api/tokens")
def create_token(request):
    """Trade an address and password for an API token, shown in this answer only."""
    new = auth.tokens.create(authenticated(request), "api", scopes=list(SCOPES))
    return {"token": new.secret}, 201


def own_account(request):
    return Account.get(Account.owner == request.user)


@app.get("/api/me")
@requires_scope("bank")
def me(request):
    account = own_account(request)
    return {"email": request.user.email, "account": account.id, "balance": account.balance}


@app.post("/api/transfers")
@requires_scope("bank")
@idempotency.route
def transfer(request):
    """Move money; both balances, the transfer and its job commit together or not at all."""
    data = request.json_object
    amount = data.get_int("amount", min=1, max=OPENING_BALANCE)
    target_id = data.get_int("to", min=1)
    source = own_account(request)
    if target_id == source.id:
        abort(400, "the field 'to' must be another account")
    debit = Account.update(balance=Account.balance - amount).where(
        Account.id == source.id, Account.balance >= amount
    )
    credit = Account.update(balance=Account.balance + amount).where(Account.id == target_id)
    # Rows are locked in the order of their ids, so two opposite transfers cannot deadlock.
    first, second = (debit, credit) if source.id < target_id else (credit, debit)
    if first.execute() != 1 or second.execute() != 1:
        if not Account.select().where(Account.id == target_id).exists():
            abort(404, f"there is no account {target_id}")
        abort(409, f"the balance is less than {amount}")
    moved = Transfer.create(source=source.id, target=target_id, amount=amount)
    record_receipt.enqueue(moved.id)  # committed with the transfer, or not at all
    return {"id": moved.id, "from": source.id, "to": target_id, "amount": amount}, 201
