"""Tests of microback.db, run on SQLite and on the servers MICROBACK_TEST_DATABASES selects."""
