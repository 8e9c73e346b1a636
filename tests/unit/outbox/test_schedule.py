"""The beat schedule: relay ticks per provider, the command relay, maintenance, the redelivery sweep."""

from protean_celery.app import guarantee_defaults
from protean_celery.outbox.schedule import beat_entries

TASKS = {what: f"protean.shop.relay.{what}" for what in ("outbox", "commands", "maintenance", "sweep")}


def test_maintenance_runs_on_the_relay_queue_at_its_own_interval():
    entries = beat_entries(TASKS, "protean.shop.relay", ["default"], 1.0, maintenance_interval=300.0)
    assert entries["protean.shop.relay.maintenance"] == {
        "task": "protean.shop.relay.maintenance",
        "schedule": 300.0,
        "options": {"queue": "protean.shop.relay", "expires": 300.0},
    }
    assert entries["protean.shop.relay.outbox[default]"]["schedule"] == 1.0
    assert entries["protean.shop.relay.commands"]["options"] == {"queue": "protean.shop.relay", "expires": 1.0}


def test_no_maintenance_entry_without_an_interval():
    assert set(beat_entries(TASKS, "q", ["a", "b"], 2.0)) == {
        "protean.shop.relay.outbox[a]", "protean.shop.relay.outbox[b]", "protean.shop.relay.commands",
    }


def test_the_app_schedules_maintenance_every_maintenance_interval(shop_app):
    schedule = guarantee_defaults(shop_app.runtime, ["default"])["beat_schedule"]
    assert schedule["protean.shop.relay.maintenance"]["schedule"] == shop_app.settings.maintenance_interval == 300.0
    assert "protean.shop.relay.maintenance" in shop_app.tasks
    assert shop_app.conf.task_routes["protean.shop.relay.maintenance"] == {"queue": "protean.shop.relay"}


def test_the_sweep_runs_on_the_relay_queue_every_sweep_interval(shop_app):
    entries = beat_entries(TASKS, "protean.shop.relay", ["default"], 1.0, sweep_interval=60.0)
    assert entries["protean.shop.relay.sweep"] == {
        "task": "protean.shop.relay.sweep",
        "schedule": 60.0,
        "options": {"queue": "protean.shop.relay", "expires": 60.0},
    }
    assert "protean.shop.relay.sweep" not in beat_entries(TASKS, "q", ["a"], 1.0, sweep_interval=0)
    schedule = guarantee_defaults(shop_app.runtime, ["default"])["beat_schedule"]
    assert schedule["protean.shop.relay.sweep"]["schedule"] == shop_app.settings.sweep_interval == 60.0
    assert shop_app.conf.task_routes["protean.shop.relay.sweep"] == {"queue": "protean.shop.relay"}
