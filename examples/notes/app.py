"""Notes: a JSON API on a database, with pagination and migrations.

From this folder (the database file is created here)::

    microback db migrate app.py:app      # applies migrations/0001_..., 0002_...
    microback serve app.py:app

    curl localhost:8000/notes --json '{"text": "milk", "title": "shopping"}'
    curl 'localhost:8000/notes?limit=10'   # the next page is in "next" and the Link header
    curl localhost:8000/openapi.json       # the API's OpenAPI document; /docs to try it

``DATABASE_URL=postgresql://...`` runs it on PostgreSQL instead.

The JSON the API takes and gives is declared by the handlers' types (docs/validation.md):
``NewNote`` is checked before the handler runs (every invalid field in one 422), and the rows
leave through ``NoteOut``, which names the fields a client sees.
"""

from typing import Annotated

import msgspec

from microback import App, enable_openapi, operation
from microback.db import Database, fields, paginate

app = App()
db = Database(app, "sqlite:///notes.db")
enable_openapi(app, title="Notes", version="1.0.0")  # /openapi.json, and /docs to try it


class Note(db.Model):
    text = fields.TextField()
    title = fields.CharField(max_length=200, default="")  # added by migration 0002


class NewNote(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(max_length=10_000)]
    title: Annotated[str, msgspec.Meta(max_length=200)] = ""


class NoteOut(msgspec.Struct):
    id: int
    text: str
    title: str


class NotePage(msgspec.Struct):
    items: list[NoteOut]
    # The cursor (or, with ?offset=, the offset) of the next and previous pages; null at an end.
    next: str | int | None
    prev: str | int | None


@app.get("/notes")
@operation(responses={400: "limit, cursor or offset is malformed or out of range"})
def list_notes(request) -> NotePage:
    page = paginate(request, Note.select())
    return page.to_dict(serialize=lambda note: note), page.headers  # rows: NoteOut picks


@app.post("/notes")
@operation(status=201)
def create_note(request, new: NewNote) -> NoteOut:
    return Note.create(text=new.text, title=new.title), 201


@app.get("/notes/<int:note_id>")
def show_note(request, note_id: int) -> NoteOut:
    return Note.get_or_404(Note.id == note_id)
