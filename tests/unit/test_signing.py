"""Message signing from [custom.celery]: Celery's auth serializer configured at build; bad files are typed errors."""

import pytest

from protean_celery.errors import ConfigurationError
from protean_celery.signing import AUTH_CONTENT_TYPE, refused_signature, signing_enabled
from tests.support.signing import make_identity


@pytest.fixture
def identity(tmp_path):
    return make_identity(tmp_path, "app")


def test_without_security_settings_messages_stay_plain_json(sqlite_shop):
    app = sqlite_shop()
    assert not signing_enabled(app)
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]


def test_the_security_settings_turn_celerys_message_signing_on(sqlite_shop, identity):
    app = sqlite_shop(**identity.settings())
    assert signing_enabled(app)
    assert app.conf.accept_content == ["auth"]
    assert app.conf.security_key == str(identity.key) and app.conf.security_cert_store == str(identity.store)
    assert app.conf.result_accept_content == ["json"]  # results stay JSON


def test_a_signed_body_round_trips_and_an_altered_one_does_not_decode(sqlite_shop, identity):
    from kombu.exceptions import DecodeError
    from kombu.serialization import dumps, loads

    app = sqlite_shop(**identity.settings())
    assert app.conf.task_serializer == "auth"  # loads the configuration: setup_security runs
    content_type, encoding, body = dumps({"ok": 1}, serializer="auth")
    assert content_type == AUTH_CONTENT_TYPE
    assert loads(body, content_type, encoding, accept=[AUTH_CONTENT_TYPE]) == {"ok": 1}
    altered = body[:-8] + ("A" * 8 if isinstance(body, str) else b"A" * 8)
    with pytest.raises(DecodeError):  # what the worker's consumer parks (tests/unit/worker/test_consumer.py)
        loads(altered, content_type, encoding, accept=[AUTH_CONTENT_TYPE])


def test_a_refused_signature_is_worded_for_the_dead_letter():
    text = refused_signature(ValueError("Unknown certificate"))
    assert text.startswith("The task message's signature does not verify (Unknown certificate)")
    assert "security_cert_store" in text


@pytest.mark.parametrize("setting", ["security_key", "security_certificate", "security_cert_store"])
def test_a_missing_file_is_a_configuration_error_naming_its_setting(sqlite_shop, identity, tmp_path, setting):
    settings = {**identity.settings(), setting: str(tmp_path / "nowhere.pem")}
    with pytest.raises(ConfigurationError, match=f"{setting} = .*nowhere.pem.*no such file") as caught:
        sqlite_shop(**settings)
    assert caught.value.setting == setting


def test_a_key_that_is_not_pem_is_a_configuration_error_naming_security_key(sqlite_shop, identity):
    identity.key.write_text("not a key")
    with pytest.raises(ConfigurationError, match="security_key = .* cannot be loaded") as caught:
        sqlite_shop(**identity.settings())
    assert caught.value.setting == "security_key"


def test_an_empty_certificate_store_is_refused(sqlite_shop, identity):
    for path in identity.store.iterdir():
        path.unlink()
    with pytest.raises(ConfigurationError, match="security_cert_store = .* holds no certificate"):
        sqlite_shop(**identity.settings())


def test_signing_needs_all_three_settings(sqlite_shop, identity):
    with pytest.raises(ConfigurationError, match="security_cert_store missing"):
        sqlite_shop(security_key=str(identity.key), security_certificate=str(identity.certificate))


def test_check_accepts_the_auth_serializer_when_signing_is_on_and_only_then(sqlite_shop, identity):
    from protean_celery.cli.check import problems

    signed = sqlite_shop(**identity.settings())
    assert not [line for line in problems(signed) if "task_serializer" in line]
    plain = sqlite_shop()
    plain.conf.task_serializer = "auth"
    assert [line for line in problems(plain) if "task_serializer" in line]
