"""A [celery] table where Protean ignores it is refused, naming where to move it."""

from types import SimpleNamespace

import pytest

from protean_celery import ProteanCelery
from protean_celery.config_file import refuse_misplaced_celery_table
from protean_celery.errors import ConfigurationError
from protean_celery.outbox.cursor import MemoryCursorStore
from tests.support.shop import build_domain


@pytest.mark.parametrize("name", ["domain.toml", ".domain.toml"])
def test_a_top_level_celery_table_is_refused(tmp_path, name):
    (tmp_path / name).write_text("[celery]\nrelay_interval = 2\n")
    with pytest.raises(ConfigurationError, match=r"move it to \[custom.celery\]"):
        refuse_misplaced_celery_table(SimpleNamespace(root_path=str(tmp_path / "pkg")))  # found from a child


def test_pyproject_is_read_under_tool_protean(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.protean.custom.celery]\nnudge = false\n")
    refuse_misplaced_celery_table(SimpleNamespace(root_path=str(tmp_path)))
    (tmp_path / "pyproject.toml").write_text("[tool.protean.celery]\nnudge = false\n")
    with pytest.raises(ConfigurationError, match="pyproject.toml: Protean ignores a top-level"):
        refuse_misplaced_celery_table(SimpleNamespace(root_path=str(tmp_path)))


def test_the_app_refuses_a_misplaced_table_at_build(tmp_path):
    (tmp_path / "domain.toml").write_text("[custom.celery]\nnudge = false\n\n[celery]\nnudge = false\n")
    domain = build_domain()
    domain.init(traverse=False)
    domain.root_path = str(tmp_path)
    with pytest.raises(ConfigurationError, match=r"move it to \[custom.celery\]"):
        ProteanCelery(domain, config={"broker_url": "memory://"}, cursors=MemoryCursorStore())
