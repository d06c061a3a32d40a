"""A small API with its docs page, for tests/browser/test_openapi_docs.py."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import msgspec

from microback import App, Query, enable_openapi, operation
from microback.db import Database, fields

app = App()
db = Database(app, "sqlite:///openapi.db")  # DATABASE_URL overrides
enable_openapi(app, title="Notes", version="1.0.0")


class Note(db.Model):
    text = fields.TextField()


db.create_tables()
if not Note.select().exists():
    Note.create(text="milk")


class NewNote(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class NoteOut(msgspec.Struct):
    id: int
    text: str


@dataclasses.dataclass
class Page:
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20


@app.get("/notes")
def list_notes(request, page: Annotated[Page, Query()]) -> list[NoteOut]:
    """List the notes."""
    return list(Note.select().limit(page.limit))


@app.post("/notes")
@operation(status=201)
def create_note(request, note: NewNote) -> NoteOut:
    """Write a note."""
    return Note.create(text=note.text), 201


@app.get("/notes/<int:note_id>")
def show_note(request, note_id) -> NoteOut:
    """Give one note."""
    return Note.get_or_404(Note.id == note_id)
