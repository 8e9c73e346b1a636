"""Reading back an ordering run (``ordering_app``): what each handler saw, in what order, and the tallies.

Shared by ``test_ordered_lanes.py`` and ``benchmarks/ordering.py``; opens its own
connections to the run's PostgreSQL database.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import create_engine, text


def _rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query))]
    finally:
        engine.dispose()


def seen(url: str) -> dict[str, int]:
    """How many bumps each handler recorded."""
    return {str(h): int(n) for h, n in _rows(url, "SELECT handler, count(*) FROM ordering_seen GROUP BY handler")}


def inversions(url: str, handler: str) -> int:
    """Pairs of one account's bumps that ``handler`` saw in the opposite of their commit order."""
    order: dict[str, list[int]] = defaultdict(list)
    for key, seq in _rows(url, f"SELECT key, seq FROM ordering_seen WHERE handler = '{handler}' ORDER BY id"):
        order[str(key)].append(int(seq))
    return sum(1 for seqs in order.values() for i, a in enumerate(seqs) for b in seqs[i + 1:] if a > b)


def duplicates(url: str, handler: str) -> int:
    """Bumps ``handler`` recorded more than once."""
    query = (f"SELECT count(*) - count(DISTINCT (key, seq)) FROM ordering_seen WHERE handler = '{handler}'")
    return int(_rows(url, query)[0][0])


def tallies(url: str, table: str) -> int:
    """The sum of a tally projection's counts (``tally`` or ``loose_tally``)."""
    return int(_rows(url, f"SELECT coalesce(sum(count), 0) FROM {table}")[0][0])


def handled(url: str, handler_name: str) -> int:
    """Inbox markers of the handler class ``handler_name`` (messages it is done with)."""
    query = f"SELECT count(*) FROM protean_celery_inbox WHERE handler LIKE '%.{handler_name}'"
    return int(_rows(url, query)[0][0])
