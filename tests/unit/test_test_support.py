"""The shared test domain (``tests/support/shop.py``) guards its module-level classes."""

import pytest

from tests.support.shop import Fulfilment, build_domain


def test_another_name_for_the_shared_shop_classes_is_refused_before_anything_is_registered():
    with pytest.raises(ValueError, match="registered only under the name 'shop'"):
        build_domain(name="race")

    domain = build_domain()  # the classes still carry the shop's stream categories
    domain.init(traverse=False)
    assert Fulfilment.meta_.stream_categories == ["shop::order"]
