"""The SMS sender against the real gateway simulator and real sockets: what each kind of
answer, or the lack of one, becomes (a receipt, a temporary or a permanent `SendError`)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from notify_harness import SMS_KEY, serve_in_loop, unique_phone

from permits_notify.adapters.channels import SendError, SmsGatewaySender
from permits_notify.adapters.templates import RenderedMessage
from permits_notify.config import NotifySettings
from permits_notify.simulators.sms_gateway import FailureRule, GatewayState, create_sms_gateway_app

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

MESSAGE = RenderedMessage(subject=None, body="您的居住证可以领取了。")


def sender_for(url: str, *, key: str = SMS_KEY, timeout: float = 5.0) -> SmsGatewaySender:
    return SmsGatewaySender(
        NotifySettings(sms_url=url, sms_api_key=key, sms_timeout_seconds=timeout)
    )


@pytest_asyncio.fixture(loop_scope="session")
async def gateway() -> AsyncIterator[tuple[str, GatewayState]]:
    app = create_sms_gateway_app(SMS_KEY)
    server, task, port = await serve_in_loop(app)
    yield f"http://127.0.0.1:{port}/api/v1/messages", app.state.gateway
    server.should_exit = True
    await task


async def test_a_delivered_sms_gives_the_gateways_id_and_a_repeat_sends_nothing(
    gateway: tuple[str, GatewayState],
) -> None:
    url, state = gateway
    sender = sender_for(url)
    phone = unique_phone()
    try:
        first = await sender.send(phone, MESSAGE, "delivery-1")
        again = await sender.send(phone, MESSAGE, "delivery-1")
    finally:
        await sender.close()
    assert first.delivered
    assert first.provider_id
    assert again.provider_id == first.provider_id
    sent = [m for m in state.messages if m["to"] == phone]
    assert [(m["text"], m["reference"]) for m in sent] == [(MESSAGE.body, "delivery-1")]


async def test_refusals_are_permanent_and_outages_temporary(
    gateway: tuple[str, GatewayState],
) -> None:
    url, state = gateway
    sender = sender_for(url)
    wrong_key = sender_for(url, key="not-the-key")
    phone = unique_phone()
    state.rules.append(FailureRule(kind="temporary", number=phone, count=1))
    try:
        with pytest.raises(SendError) as unavailable:
            await sender.send(phone, MESSAGE, "delivery-2")
        with pytest.raises(SendError) as bad_number:
            await sender.send("12", MESSAGE, "delivery-3")
        with pytest.raises(SendError) as unauthorized:
            await wrong_key.send(phone, MESSAGE, "delivery-4")
        receipt = await sender.send(phone, MESSAGE, "delivery-2")
    finally:
        await sender.close()
        await wrong_key.close()
    assert (str(unavailable.value), unavailable.value.permanent) == ("gateway 503", False)
    assert (str(bad_number.value), bad_number.value.permanent) == (
        "gateway 400 invalid_number",
        True,
    )
    assert (str(unauthorized.value), unauthorized.value.permanent) == (
        "gateway 401 unauthorized",
        True,
    )
    assert receipt.delivered


async def test_no_gateway_listening_is_a_temporary_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = sender_for(f"http://127.0.0.1:{port}/api/v1/messages")
    try:
        with pytest.raises(SendError) as refused:
            await sender.send(unique_phone(), MESSAGE, "delivery-5")
    finally:
        await sender.close()
    assert not refused.value.permanent
    assert str(refused.value).startswith("gateway unreachable: ")


async def test_a_gateway_that_never_answers_times_out_as_a_temporary_failure() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(10)
        writer.close()

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    sender = sender_for(f"http://127.0.0.1:{port}/api/v1/messages", timeout=0.3)
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(SendError) as timed_out:
            await sender.send(unique_phone(), MESSAGE, "delivery-6")
    finally:
        await sender.close()
        silent.close()
    assert not timed_out.value.permanent
    assert str(timed_out.value).startswith("gateway unreachable: ")
    assert asyncio.get_running_loop().time() - started < 3


async def test_the_gateway_refuses_a_malformed_message_before_looking_at_the_key(
    gateway: tuple[str, GatewayState],
) -> None:
    url, state = gateway
    async with httpx.AsyncClient() as client:
        missing_text = await client.post(url, json={"to": unique_phone()})
        too_long = await client.post(
            url,
            json={"to": unique_phone(), "text": "x" * 2001},
            headers={"Authorization": f"Bearer {SMS_KEY}"},
        )
    assert missing_text.status_code == too_long.status_code == 422
    assert [error["loc"] for error in missing_text.json()["detail"]] == [["body", "text"]]
    assert [error["loc"] for error in too_long.json()["detail"]] == [["body", "text"]]
    assert state.refused == 0
