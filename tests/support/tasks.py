"""A stand-in for a bound Celery task, to call ``protean_celery.tasks.execute`` directly."""

from celery.exceptions import Retry


class FakeTask:
    """A request with a retry count; ``retry`` records its countdown and budget instead of re-sending."""

    def __init__(self, retries: int = 0) -> None:
        self.request = type("Request", (), {"id": "t1", "retries": retries})()
        self.retried_with: tuple[float, int | None] | None = None

    def retry(self, exc: BaseException, countdown: float, max_retries: int | None) -> Retry:
        self.retried_with = (countdown, max_retries)
        return Retry(exc=exc, when=countdown)
