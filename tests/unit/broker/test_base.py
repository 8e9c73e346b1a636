"""What a broker adapter reports: a queue it could not read counts as holding every task."""

from protean_celery.broker import Sighting


def test_a_queue_the_probe_could_not_read_counts_as_holding_every_task():
    sighting = Sighting(found={"t1"}, unsure={"q2"})
    assert sighting.present("q1", "t1") and not sighting.present("q1", "t2")
    assert sighting.present("q2", "anything")
