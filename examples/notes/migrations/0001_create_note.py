"""Create the note table."""

from peewee import Model, TextField


def up(migrator, db):
    # A frozen copy of the model as it was: this file must not change when the model does.
    class Note(Model):
        text = TextField()

        class Meta:
            database = db
            table_name = "note"

    db.create_tables([Note])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("note"))
