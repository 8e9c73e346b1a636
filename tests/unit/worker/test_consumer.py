"""What the consumer keeps of a message it turns away: the raw body, or the task's argument."""

import json

from kombu.message import Message

from protean_celery.worker.consumer import raw_body, task_argument


def _message(body, content_type="application/json", content_encoding="utf-8"):
    return Message(body=body, content_type=content_type, content_encoding=content_encoding, headers={"task": "t"})


def test_a_body_that_decodes_as_text_is_kept_as_text():
    assert raw_body(_message(b'{"no": ')) == {
        "content_type": "application/json", "content_encoding": "utf-8", "body": '{"no": ', "body_encoding": "text",
    }


def test_a_body_that_is_not_text_is_kept_as_base64():
    kept = raw_body(_message(b"\xff\x00", content_encoding="binary"))
    assert (kept["body"], kept["body_encoding"]) == ("/wA=", "base64")


def test_the_argument_of_a_one_argument_task_is_kept_as_is():
    body = json.dumps([[{"data": {}, "metadata": {}}], {}, {}]).encode()
    assert task_argument(_message(body)) == {"data": {}, "metadata": {}}


def test_other_calls_keep_args_and_kwargs():
    body = json.dumps([[1, 2], {"k": 3}, {}]).encode()
    assert task_argument(_message(body)) == {"args": [1, 2], "kwargs": {"k": 3}}


def test_an_undecodable_task_body_is_kept_raw():
    assert task_argument(_message(b"[[1,"))["body"] == "[[1,"


def test_check_names_a_worker_consumer_that_would_drop_undecodable_bodies(shop_app):
    from protean_celery.cli.check import problems

    assert not [line for line in problems(shop_app) if "worker_consumer" in line]
    shop_app.conf.worker_consumer = "celery.worker.consumer:Consumer"
    assert [line for line in problems(shop_app) if "worker_consumer" in line]


def test_a_message_the_consumer_parks_is_traced_as_dead_lettered(shop_app, monkeypatch):
    from protean_celery.worker.consumer import park
    from tests.support.traces import record

    recorder = record(shop_app, monkeypatch)
    park(shop_app, "protean.shop.Nobody", {"hello": "world"}, ValueError("no such task"))
    [entry] = shop_app.runtime.dead_letters.list()
    assert recorder.names() == ["message.dlq"]
    dlq = recorder.first("message.dlq")
    assert dlq["handler"] == "protean.shop.Nobody" and dlq["metadata"]["dead_letter"] == entry.id
    assert "no such task" in dlq["error"]
