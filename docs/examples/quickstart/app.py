"""The Celery app: celery -A app worker | beat | protean …"""

from bookshelf import domain

import protean_celery  # noqa: F401  (registers the SQL event store before init)
from protean_celery import ProteanCelery, init_domain, prepare_databases

prepare_databases(domain.config)     # creates .state/ (SQLite does not create folders)
init_domain(domain, traverse=False)  # domain.init(); a connection error shows no password
app = ProteanCelery(domain)          # a celery.Celery with one task per handler
