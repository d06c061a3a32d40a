"""Give notes a title."""

from peewee import CharField


def up(migrator, db):
    migrator.migrate(migrator.add_column("note", "title", CharField(max_length=200, default="")))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("note", "title"))
