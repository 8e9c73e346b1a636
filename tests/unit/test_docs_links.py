"""README and the docs' home page link every guide, and every link to a page points at one that exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = sorted(path.name for path in (ROOT / "docs" / "guides").glob("*.md"))


@pytest.mark.parametrize(("page", "prefix"), [("README.md", "docs/guides/"), ("docs/index.md", "guides/")])
def test_the_page_links_every_guide_and_only_pages_that_exist(page, prefix):
    text = (ROOT / page).read_text()
    linked = set(re.findall(r"\]\(([^)#\s]+\.md)", text))
    assert [guide for guide in GUIDES if f"{prefix}{guide}" not in linked] == []
    base = (ROOT / page).parent
    assert [link for link in sorted(linked) if not (base / link).exists()] == []
