"""Settings from the environment, production refusal of dev secrets, roles and log masking."""

import pytest

from permits_common.events import topics
from permits_common.logs import _drop_personal_data, mask
from permits_common.settings import CommonSettings, DevelopmentSecretsInProductionError
from permits_common.web.auth import Principal, TokenAuthority, parse_role


def test_development_tokens_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERMITS_TOKENS", raising=False)
    settings = CommonSettings()
    assert settings.tokens["dev-clerk"] == "clerk"
    assert settings.tokens["dev-agency-hotel"] == "agency:hotel"
    assert len([t for t in settings.tokens if t.startswith("dev-agency-")]) == 12


def test_production_refuses_development_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERMITS_ENV", "production")
    monkeypatch.delenv("PERMITS_TOKENS", raising=False)
    with pytest.raises(DevelopmentSecretsInProductionError):
        CommonSettings()
    monkeypatch.setenv("PERMITS_TOKENS", '{"k3y-8f2a": "ops"}')
    assert CommonSettings().tokens == {"k3y-8f2a": "ops"}


def test_production_refuses_a_topic_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERMITS_ENV", "production")
    monkeypatch.setenv("PERMITS_TOKENS", '{"k3y-8f2a": "ops"}')
    monkeypatch.setattr(topics, "NAMESPACE", "replicas.")
    with pytest.raises(ValueError, match="PERMITS_TOPIC_NAMESPACE"):
        CommonSettings()
    monkeypatch.setenv("PERMITS_ENV", "development")
    assert CommonSettings().env == "development"


def test_roles_parse() -> None:
    assert parse_role("clerk:LIXIA") == Principal("clerk", "LIXIA")
    assert parse_role("agency:hotel").agency is not None
    with pytest.raises(ValueError, match="unknown role"):
        parse_role("agency:casino")
    with pytest.raises(ValueError, match="unknown role"):
        parse_role("root")


def test_tokens_identify_principals() -> None:
    authority = TokenAuthority({"a": "ops", "b": "clerk:LIXIA"})
    assert authority.identify("a") == Principal("ops")
    assert authority.identify("nope") is None
    clerk = authority.identify("b")
    assert clerk is not None
    assert clerk.may_act_for_point("LIXIA")
    assert not clerk.may_act_for_point("SHIZHONG")


def test_header_values_are_remembered_only_when_they_name_someone_and_up_to_a_bound() -> None:
    authority = TokenAuthority({"a": "ops"})
    for _ in range(2):  # the second time from memory, the same answers
        assert authority.identify_header(b"Bearer a") == Principal("ops")
        assert authority.identify_header(b"bearer  a ") == Principal("ops")
        assert authority.identify_header(b"Bearer nope") is None
        assert authority.identify_header(b"Basic a") is None
        assert authority.identify_header(b"Bearer ") is None
    assert authority._by_header.keys() == {b"Bearer a", b"bearer  a "}
    for spaces in range(1, 2 * TokenAuthority.REMEMBERED_HEADERS):
        assert authority.identify_header(b"Bearer " + b" " * spaces + b"a") == Principal("ops")
    assert len(authority._by_header) == TokenAuthority.REMEMBERED_HEADERS


def test_personal_fields_are_masked_above_debug() -> None:
    event = {"event": "x", "phone": "+85291234567", "name": "陈大文", "code": "no_basis"}
    masked = _drop_personal_data(None, "info", dict(event))
    assert masked["phone"] == mask("+85291234567") == "***67"
    assert masked["code"] == "no_basis"
    assert "陈大文" not in str(masked)
    assert _drop_personal_data(None, "debug", dict(event))["phone"] == "+85291234567"
