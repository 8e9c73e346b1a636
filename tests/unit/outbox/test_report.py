"""A relay run's report: what moved is outbox rows plus commands."""

from protean_celery.outbox.report import RelayReport


def test_moved_counts_rows_and_commands_not_tasks_or_failures():
    report = RelayReport(events=2, commands=3, tasks=9, failed=1)
    assert report.moved == 5
    assert RelayReport().moved == 0
