"""Notes: a JSON API on a database, with pagination and migrations.

From this folder (the database file is created here)::

    microback db migrate app.py:app      # applies migrations/0001_..., 0002_...
    microback serve app.py:app

    curl localhost:8000/notes --json '{"text": "milk", "title": "shopping"}'
    curl 'localhost:8000/notes?limit=10'   # the next page is in "next" and the Link header

``DATABASE_URL=postgresql://...`` runs it on PostgreSQL instead.
"""

from microback import App
from microback.db import Database, fields, paginate

app = App()
db = Database(app, "sqlite:///notes.db")


class Note(db.Model):
    text = fields.TextField()
    title = fields.CharField(max_length=200, default="")  # added by migration 0002


@app.get("/notes")
def list_notes(request):
    page = paginate(request, Note.select())
    return page.to_dict(), page.headers


@app.post("/notes")
def create_note(request):
    data = request.json_object  # typed getters: a missing or mistyped field is a 400
    text = data.get_str("text", max_length=10_000)
    note = Note.create(text=text, title=data.get_str("title", "", max_length=200))
    return note.to_dict(), 201


@app.get("/notes/<int:note_id>")
def show_note(request, note_id):
    return Note.get_or_404(Note.id == note_id).to_dict()
