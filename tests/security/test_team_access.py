"""Rows that belong to a team: ``owned_or_404`` and ``owned_by`` with ``members=``, per backend."""

from __future__ import annotations

import pytest

from microback import App
from microback.db import Database, fields
from microback.security import Auth, login_required, owned_by, owned_or_404
from microback.testing import TestClient

SECRET = "team-access-secret-key-0123456789abcdef"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def world(database_url: str):
    app = App(secret_key=SECRET)
    db = Database(app, database_url)
    auth = Auth(app, db, password_rounds=10)

    class Team(db.Model):
        name = fields.CharField(max_length=100)

    class Membership(db.Model):
        team = fields.ForeignKeyField(Team, backref="memberships", on_delete="CASCADE")
        user = fields.ForeignKeyField(auth.User, backref="memberships", on_delete="CASCADE")

    class Task(db.Model):
        team = fields.ForeignKeyField(Team, backref="tasks", on_delete="CASCADE")
        title = fields.CharField(max_length=200)

    class Shared(db.Model):  # two keys to users: which one is the member is not clear
        team = fields.ForeignKeyField(Team)
        user = fields.ForeignKeyField(auth.User)
        added_by = fields.ForeignKeyField(auth.User, backref="added")

    db.create_tables()

    @app.get("/tasks/<int:task_id>")
    @login_required
    def show_task(request, task_id):
        task = owned_or_404(Task, request, Task.id == task_id, owner="team", members=Membership)
        return {"title": task.title}

    @app.get("/tasks")
    @login_required
    def list_tasks(request):
        mine = owned_by(Task, request.user, owner="team", members=Membership)
        return [task.title for task in Task.select().where(mine).order_by(Task.id)]

    @app.get("/teams")
    @login_required
    def list_teams(request):
        mine = owned_by(Team, request.user, owner="id", members=Membership)
        return [team.name for team in Team.select().where(mine).order_by(Team.id)]

    red, blue = Team.create(name="red"), Team.create(name="blue")
    ada, bob, cy = (auth.create_user(f"{n}@example.org", PASSWORD) for n in ("ada", "bob", "cy"))
    Membership.create(team=red, user=ada)
    Membership.create(team=blue, user=bob)
    Membership.create(team=red, user=cy)
    Membership.create(team=blue, user=cy)
    tasks = {
        "paint": Task.create(team=red, title="paint"),
        "sail": Task.create(team=blue, title="sail"),
    }
    yield {
        "app": app,
        "users": {"ada": ada, "bob": bob, "cy": cy},
        "tasks": tasks,
        "models": (Team, Membership, Task, Shared),
    }
    db.close_all()


def client_for(world, name: str) -> TestClient:
    client = TestClient(world["app"])
    client.log_in(world["users"][name])
    return client


def test_a_teams_row_is_given_to_its_members_and_404_to_others(world) -> None:
    paint = world["tasks"]["paint"].id
    ada, bob, cy = (client_for(world, name) for name in ("ada", "bob", "cy"))

    assert ada.get(f"/tasks/{paint}").json == {"title": "paint"}
    assert cy.get(f"/tasks/{paint}").json == {"title": "paint"}
    theirs = bob.get(f"/tasks/{paint}", status=404)
    missing = bob.get("/tasks/999999", status=404)
    assert theirs.json == missing.json
    assert missing.json["detail"] == "Task not found"


def test_lists_hold_only_the_rows_of_the_users_teams(world) -> None:
    assert client_for(world, "ada").get("/tasks").json == ["paint"]
    assert client_for(world, "bob").get("/tasks").json == ["sail"]
    assert client_for(world, "cy").get("/tasks").json == ["paint", "sail"]
    assert client_for(world, "cy").get("/teams").json == ["red", "blue"]
    assert client_for(world, "ada").get("/teams").json == ["red"]


def test_leaving_the_team_takes_the_access_away_at_once(world) -> None:
    _, Membership, _, _ = world["models"]
    ada = client_for(world, "ada")
    paint = world["tasks"]["paint"].id
    ada.get(f"/tasks/{paint}", status=200)

    Membership.delete().where(Membership.user == world["users"]["ada"]).execute()

    ada.get(f"/tasks/{paint}", status=404)
    assert ada.get("/tasks").json == []


def test_nobody_signed_in_owns_nothing(world) -> None:
    from microback.security import ANONYMOUS

    _, Membership, Task, _ = world["models"]
    anyone = owned_by(Task, ANONYMOUS, owner="team", members=Membership)
    single = owned_by(Task, ANONYMOUS, owner="team")

    assert list(Task.select().where(anyone)) == []
    assert list(Task.select().where(single)) == []


def test_an_unclear_membership_model_or_field_is_named(world) -> None:
    _, Membership, Task, Shared = world["models"]
    ada = world["users"]["ada"]

    with pytest.raises(ValueError, match=r"members=Shared needs one foreign key to Team and one"):
        owned_by(Task, ada, owner="team", members=Shared)
    with pytest.raises(ValueError, match=r"Task has no field 'group'; pass owner="):
        owned_by(Task, ada, owner="group", members=Membership)
