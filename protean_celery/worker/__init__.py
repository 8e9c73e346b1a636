"""Workarounds for Celery and Kombu traps inside the worker, each naming the upstream issue it works around.

* :mod:`.consumer`: Celery's consumer, dead-lettering what it turns away before
  any task runs, and guarding a lost broker connection;
* :mod:`.connection`: the close of a lost Redis connection Kombu left half closed
  (kombu/kombu#582);
* :mod:`.pool`: the prefork pool, skipping a child that exited just as the
  worker reconnects (celery/celery#9250).

``ProteanCelery`` sets ``worker_consumer`` and ``worker_pool`` to these classes.
Kombu's private names may be used here and in :mod:`protean_celery.broker` only.
"""
