"""Accounts: sign-up, login and logout, notes behind login, and a JSON API with tokens.

From this folder (the database file is created here)::

    export MICROBACK_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
    microback db create-tables app.py:app
    microback serve app.py:app

In a browser: /signup, then /notes, a note editor whose forms carry a CSRF token. The pages
are the Jinja2 templates of templates/ and the stylesheet is static/accounts.css. A script
signs up, trades the password for an API token (shown once), and sends it as a Bearer token::

    curl localhost:8000/api/signup --json '{"email": "ada@example.org",
        "password": "correct horse"}'
    curl localhost:8000/api/tokens --json '{"email": "ada@example.org",
        "password": "correct horse", "name": "laptop", "scopes": ["notes:read"]}'
    # the answer holds the token, shown this once: {"id": 1, ..., "token": "mbt_..."}
    TOKEN=$(curl localhost:8000/api/tokens --json '{"email": "ada@example.org",
        "password": "correct horse", "name": "script", "scopes": ["notes:read"]}' |
        python -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    curl localhost:8000/api/notes -H "Authorization: Bearer $TOKEN"

``ACCOUNTS_PASSWORD_ROUNDS`` lowers the bcrypt cost for tests (12 by default, 10 at least).
"""

import datetime
import os
from typing import Annotated, Literal

import msgspec

from microback import (
    App,
    HTTPException,
    Static,
    Templates,
    abort,
    enable_openapi,
    flash,
    operation,
    redirect,
    render,
)
from microback.db import Database, fields
from microback.security import Auth, Csrf, owned_or_404, rate_limit, requires_scope

app = App()
db = Database(app, "sqlite:///accounts.db")
auth = Auth(
    app,
    db,
    login_url="/login",  # where a browser that is not logged in is sent; API clients get 401
    password_rounds=int(os.environ.get("ACCOUNTS_PASSWORD_ROUNDS", "12")),
)
Csrf(app)  # after Auth, which set up the session cookie the token lives in
Templates(app)  # templates/ beside this file
Static(app)  # static/ beside this file, at /static/
enable_openapi(app, title="Accounts", version="1.0.0")  # /openapi.json, and /docs to try it

Scope = Literal["notes:read", "notes:write", "account"]  # "account": list/revoke tokens, log out
MIN_PASSWORD_LENGTH = 8
MAX_NOTE_LENGTH = 10_000


class Note(db.Model):
    owner = fields.ForeignKeyField(auth.User, backref="notes", on_delete="CASCADE")
    text = fields.TextField()


# Every route below that acts for a user says which scope it needs. requires_scope also
# requires a login; a signed-in browser has every scope, a token only those it was given.
# (A route with @login_required alone would be for browsers only: tokens get a 403.)


def sign_up(email, password):
    """Create an account from the two fields a visitor may choose, and nothing else.

    Passing named fields (never ``User.create(**request.json)``) is what keeps a sign-up from
    setting ``is_active``, ``roles`` or ``email_verified``: mass assignment.
    """
    if "@" not in email or len(email) > 254:
        abort(400, "the e-mail address is not valid")
    if len(password) < MIN_PASSWORD_LENGTH:
        abort(400, f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    return auth.create_user(email, password)  # a taken address is a 409, over 4096 bytes a 400


# --- HTML: sign-up, login, logout, the note editor -------------------------------------------


def account_form(request, action, *, error="", email="", next_path="/notes", status=200):
    title = "Sign up" if action == "/signup" else "Log in"
    return render(
        request,
        "account_form.html",
        status=status,
        title=title,
        action=action,
        error=error,
        email=email,
        next_path=next_path,
    )


def local_path(target):
    # Only a path on this site: browsers read "//evil.example" and "/\evil.example" as hosts.
    if target.startswith("/") and not target.startswith(("//", "/\\")) and target.isprintable():
        return target
    return "/notes"


@app.get("/")
def home(request):
    return redirect("/notes", 303)


@app.get("/signup")
def signup_page(request):
    return account_form(request, "/signup")


@app.post("/signup")
@rate_limit("10/hour", scope="signup")
def signup_form(request):
    email = request.form.get_str("email", max_length=254)
    try:
        user = sign_up(email, request.form.get_str("password"))
    except HTTPException as exc:  # invalid (400) or taken (409): say so on the form
        return account_form(
            request, "/signup", error=exc.description, email=email, status=exc.code
        )
    auth.login(request, user)
    return redirect("/notes", 303)


@app.get("/login")
def login_page(request):
    return account_form(request, "/login", next_path=local_path(request.args.get_str("next", "")))


@app.post("/login")
def login_form(request):
    email = request.form.get_str("email", max_length=254)
    next_path = local_path(request.form.get_str("next", ""))
    user = auth.authenticate(request, email, request.form.get_str("password"))
    if user is None:  # the same answer for an unknown address: accounts cannot be probed
        error = "wrong e-mail address or password"
        return account_form(
            request, "/login", error=error, email=email, next_path=next_path, status=400
        )
    auth.login(request, user)  # also replaces the CSRF secret: no token from before works
    return redirect(next_path, 303)


@app.post("/logout")
def logout(request):
    auth.logout(request)
    flash(request, "You are logged out.")  # after logout, which empties the session
    return redirect("/login", 303)


@app.post("/logout-everywhere")
@requires_scope("account")
def logout_everywhere(request):
    auth.logout_everywhere(request.user)  # every other browser, and any stolen cookie
    auth.logout(request)
    flash(request, "You are logged out on every device.")
    return redirect("/login", 303)


@app.get("/notes")
@requires_scope("notes:read")
def notes_page(request):
    notes = request.user.notes.order_by(Note.id)
    return render(request, "notes.html", title="Notes", notes=notes)


@app.post("/notes")
@requires_scope("notes:write")
def add_note_form(request):
    text = request.form.get_str("text", max_length=MAX_NOTE_LENGTH)
    Note.create(owner=request.user, text=text)
    flash(request, "Note added.", "success")
    return redirect("/notes", 303)


@app.post("/notes/<int:note_id>")
@requires_scope("notes:write")
def edit_note_form(request, note_id):
    note = owned_or_404(Note, request, Note.id == note_id)  # someone else's: 404, not 403
    note.text = request.form.get_str("text", max_length=MAX_NOTE_LENGTH)
    note.save()
    return redirect("/notes", 303)


@app.post("/notes/<int:note_id>/delete")
@requires_scope("notes:write")
def delete_note_form(request, note_id):
    owned_or_404(Note, request, Note.id == note_id).delete_instance()
    return redirect("/notes", 303)


# --- JSON: sign-up, API tokens, notes -----------------------------------------------------------
# The bodies are declared by type: checked before the handler runs, every invalid field in one
# 422, and a field not declared here ("owner", "is_admin") refused. Answers leave through a
# declared type, so only its fields do (a user's password_hash cannot; docs/validation.md).


class SignUp(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=254)]
    password: str  # its length is checked by sign_up, for the form too


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=254)]
    password: str
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1)]


class NoteText(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(max_length=MAX_NOTE_LENGTH)]


class AccountOut(msgspec.Struct):
    id: int
    email: str


class TokenOut(msgspec.Struct):
    id: int
    name: str
    scopes: str  # space-separated
    created_at: datetime.datetime
    expires_at: datetime.datetime | None


class NewTokenOut(TokenOut):
    token: str  # the secret, shown in this answer only


class NoteOut(msgspec.Struct, rename={"owner_id": "owner"}):
    id: int
    owner_id: int  # the owner's id, without loading the user
    text: str


@app.post("/api/signup")
@rate_limit("10/hour", scope="signup")
@operation(status=201)
def signup_json(request, account: SignUp) -> AccountOut:
    return sign_up(account.email, account.password), 201


@app.post("/api/tokens")
@operation(
    status=201,
    responses={
        401: "wrong e-mail address or password",
        429: "too many failed log-ins for this address or client: wait (Retry-After)",
    },
)
def create_token(request, asked: NewToken) -> NewTokenOut:
    """Trade an address and password for a token; this answer is the only time it is shown."""
    user = auth.authenticate(request, asked.email, asked.password)  # 429 after many failures
    if user is None:
        abort(401, "wrong e-mail address or password")
    new = auth.tokens.create(user, asked.name, scopes=asked.scopes)
    # to_dict() gives the times as aware UTC datetimes (the token table stores them naive)
    return {**new.token.to_dict(), "token": new.secret}, 201


@app.get("/api/tokens")
@requires_scope("account")
def list_tokens(request) -> list[TokenOut]:
    live = request.user.tokens.where(auth.Token.revoked_at.is_null()).order_by(auth.Token.id)
    return [token.to_dict() for token in live]


@app.delete("/api/tokens/<int:token_id>")
@requires_scope("account")
@operation(status=204)
def revoke_token(request, token_id: int):
    Token = auth.Token
    live = (Token.id == token_id, Token.revoked_at.is_null())
    auth.tokens.revoke(owned_or_404(Token, request, *live, owner="user"))
    return "", 204


@app.get("/api/notes")
@requires_scope("notes:read")
def list_notes(request) -> list[NoteOut]:
    return list(request.user.notes.order_by(Note.id))


@app.post("/api/notes")
@requires_scope("notes:write")
@operation(status=201)
def create_note(request, note: NoteText) -> NoteOut:
    return Note.create(owner=request.user, text=note.text), 201


@app.get("/api/notes/<int:note_id>")
@requires_scope("notes:read")
def show_note(request, note_id: int) -> NoteOut:
    return owned_or_404(Note, request, Note.id == note_id)


@app.put("/api/notes/<int:note_id>")
@requires_scope("notes:write")
def update_note(request, note_id: int, note: NoteText) -> NoteOut:
    row = owned_or_404(Note, request, Note.id == note_id)
    row.text = note.text
    row.save()
    return row


@app.delete("/api/notes/<int:note_id>")
@requires_scope("notes:write")
@operation(status=204)
def delete_note(request, note_id: int):
    owned_or_404(Note, request, Note.id == note_id).delete_instance()
    return "", 204
