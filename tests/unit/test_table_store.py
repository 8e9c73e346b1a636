"""A table's life cycle on an engine, and a store without a database (the memory provider)."""

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect

from protean_celery.table_store import TableStore

notes = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("text", String(20)))


class Notes(TableStore):
    table = notes

    def __init__(self, engine):
        self.engine = engine


def test_setup_truncate_first_and_drop_on_sqlite(tmp_path):
    store = Notes(create_engine(f"sqlite:///{tmp_path / 'notes.db'}"))
    store.setup()
    store.setup()  # idempotent
    with store.writing() as conn:
        conn.execute(notes.insert().values(id=1, text="one"))

    assert store.first(notes.c.id == 1) == {"id": 1, "text": "one"}
    assert store.first(notes.c.id == 2) is None
    store.truncate()
    assert store.first(notes.c.id == 1) is None
    store.drop()
    assert not inspect(store.engine).has_table("notes")


def test_a_store_without_a_database_does_nothing():
    store = Notes(None)
    store.setup()
    store.truncate()
    store.drop()
    assert store.engine is None
