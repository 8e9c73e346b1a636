"""Which worker nodes are alive, remembered in Redis between sweeps (I/O).

Before the redelivery sweep puts an unacknowledged message back on its queue it
asks the workers whether one of them holds it (:mod:`protean_celery.broker.workers`).
With several nodes, one that is alive but slow to answer (a busy host, a full CPU)
would be taken for dead, and whatever it holds reclaimed and run twice.

So the sweep keeps a roll of the nodes that answered, with when they last did,
in a Redis hash (``protean_celery.nodes``). A node on the roll that answered within
the last ``grace`` seconds (at least :data:`NODE_GRACE`) and is silent now may be alive: the sweep reclaims
nothing this time. A node silent for longer is dead (killed, or stopped), and
what it held is reclaimed. A node that restarts under the same name answers again
and no longer reports what its killed predecessor held, which is then reclaimed.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

__all__ = ["NODE_GRACE", "ROLL_KEY", "silent_nodes"]

#: The Redis hash of node name -> the time it last answered the sweep.
ROLL_KEY = "protean_celery.nodes"
#: The shortest silence after which a node that answered before counts as dead, in seconds.
NODE_GRACE = 30.0
#: A node silent this long is forgotten (the roll stays small as nodes come and go).
FORGET_AFTER = 86400.0


def silent_nodes(client: Any, answered: Collection[str], grace: float, now: float | None = None) -> set[str]:
    """Record ``answered`` on the roll; return the nodes that answered within ``grace`` s and not now.

    Args:
        client: a ``redis.Redis`` client (the broker's).
        answered: the names of the nodes that answered this time (``a@host``).
        grace: seconds of silence after which a node counts as dead (:data:`NODE_GRACE` at least).
        now: the current time (default: ``time.time()``).
    """
    now = time.time() if now is None else now
    grace = max(grace, NODE_GRACE)
    roll = {_text(name): float(seen) for name, seen in (client.hgetall(ROLL_KEY) or {}).items()}
    if answered:
        client.hset(ROLL_KEY, mapping={name: now for name in answered})
    forgotten = [name for name, seen in roll.items() if name not in answered and now - seen > FORGET_AFTER]
    if forgotten:
        client.hdel(ROLL_KEY, *forgotten)
    return {name for name, seen in roll.items() if name not in answered and now - seen <= grace}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
