"""Databases are prepared before ``domain.init()``: SQLite folders are made (files appear on connect)."""

from protean_celery.databases import prepare_databases


def test_sqlite_folders_are_created_before_init(tmp_path):
    uri = f"sqlite:///{tmp_path}/deep/er/domain.db"
    config = {"databases": {"default": {"provider": "sqlite", "database_uri": uri}}}
    assert prepare_databases(config) == []  # SQLite files appear on first connect
    assert (tmp_path / "deep" / "er").is_dir()
