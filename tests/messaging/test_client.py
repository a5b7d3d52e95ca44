"""The WhatsApp clients against the sandbox over real sockets: every template-send test runs
on both transports (requests for the synchronous calls, aiohttp for the dispatcher), which
must build the same request and read Meta's answer the same way."""

import asyncio
import socket
import time

import pytest

from messaging import errors
from messaging.client import AsyncWhatsAppClient, TemplateMessage, WhatsAppClient
from tests.factories import MessageTemplateFactory
from tests.support import wait_until

pytestmark = pytest.mark.django_db


class AsyncSender:
    """The dispatcher's client behind a synchronous face, one event loop per call."""

    def __init__(self, **options):
        self.options = options

    def send_template(self, message):
        async def send():
            client = AsyncWhatsAppClient(**self.options)
            try:
                return await client.send_template(message)
            finally:
                await client.close()

        return asyncio.run(send())


@pytest.fixture(params=["requests", "aiohttp"])
def make_client(request):
    clients = []

    def make(**options):
        if request.param == "aiohttp":
            return AsyncSender(**options)
        clients.append(WhatsAppClient(**options))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def whatsapp_client(make_client, sandbox):
    return make_client(base_url=sandbox.url, timeout=(1, 5))


GB_PHONE = "+447700900123"
US_PHONE = "+12025550143"


def send(whatsapp_client, number, template, to=GB_PHONE, parameters=("Ada", "20%"), **overrides):
    arguments = {
        "number": number,
        "to": to,
        "template_name": template.name,
        "language": template.language,
        "parameters": list(parameters),
        "category": template.category,
        "callback_data": "recipient-42",
    }
    arguments = {**arguments, **overrides}
    if arguments["category"] == "MARKETING":
        arguments.setdefault("product_policy", "CLOUD_API_FALLBACK")
    return whatsapp_client.send_template(TemplateMessage(**arguments))


def test_marketing_template_goes_to_marketing_messages_and_returns_a_wamid(
    whatsapp_client, sandbox, number, marketing_template
):
    result = send(whatsapp_client, number, marketing_template)

    assert result.wamid.startswith("wamid.")
    [request] = sandbox.requests(phone=GB_PHONE)["requests"]
    assert request["endpoint"] == "marketing_messages"
    assert request["wamid"] == result.wamid
    assert request["callback_data"] == "recipient-42"
    assert request["template"] == "spring_sale"


@pytest.mark.parametrize("policy", ["CLOUD_API_FALLBACK", "STRICT"])
def test_every_marketing_call_carries_the_chosen_product_policy(
    whatsapp_client, sandbox, number, marketing_template, policy
):
    """Seed 004: the product_policy flag is sent on every MM Lite call, as the marketer chose."""
    send(whatsapp_client, number, marketing_template, product_policy=policy)
    send(whatsapp_client, number, marketing_template, to="+5511912345678", product_policy=policy)

    requests = sandbox.requests()["requests"]
    assert [(r["endpoint"], r["product_policy"]) for r in requests] == [
        ("marketing_messages", policy),
        ("marketing_messages", policy),
    ]


@pytest.mark.parametrize("policy", ["", "strict", "YES", None])
def test_a_marketing_call_without_a_valid_product_policy_is_refused_before_it_leaves(
    whatsapp_client, sandbox, number, marketing_template, policy
):
    with pytest.raises(ValueError, match="product_policy"):
        send(whatsapp_client, number, marketing_template, product_policy=policy)

    assert sandbox.requests()["count"] == 0


def test_utility_calls_carry_no_product_policy(whatsapp_client, sandbox, number, utility_template):
    """Cloud API's /messages takes no product_policy: the campaign's choice is not sent there."""
    send(whatsapp_client, number, utility_template, parameters=["A-17"], product_policy="STRICT")

    [request] = sandbox.requests()["requests"]
    assert (request["endpoint"], request["product_policy"], request["http_status"]) == (
        "messages",
        None,
        200,
    )


def test_utility_template_goes_to_messages(whatsapp_client, sandbox, number, utility_template):
    result = send(whatsapp_client, number, utility_template, parameters=["A-17"])

    [request] = sandbox.requests(phone=GB_PHONE)["requests"]
    assert request["endpoint"] == "messages"
    assert request["wamid"] == result.wamid


def test_us_recipient_of_marketing_is_ineligible_geo(whatsapp_client, number, marketing_template):
    with pytest.raises(errors.RecipientPermanentError) as caught:
        send(whatsapp_client, number, marketing_template, to=US_PHONE)

    assert caught.value.code == 131049
    assert caught.value.verdict == errors.RecipientVerdict(ineligible_geo=True)
    assert caught.value.fbtrace_id


def test_us_recipient_of_utility_is_sent(whatsapp_client, number, utility_template):
    assert send(whatsapp_client, number, utility_template, to=US_PHONE, parameters=["A-17"]).wamid


def test_bad_token_pauses_the_send(whatsapp_client, number, marketing_template):
    number.access_token = "expired-token"

    with pytest.raises(errors.SendLevelError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert (caught.value.code, caught.value.http_status) == (190, 401)


def test_unknown_number_is_a_send_level_error(whatsapp_client, number, marketing_template):
    number.phone_number_id = "999999"

    with pytest.raises(errors.SendLevelError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert (caught.value.code, caught.value.subcode) == (100, 33)


def test_unapproved_template_pauses_the_send(whatsapp_client, sandbox, number, marketing_template):
    sandbox.register_template(marketing_template, number.waba_id, status="PENDING")

    with pytest.raises(errors.SendLevelError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert caught.value.code == 132001
    assert "spring_sale" in caught.value.details


def test_paused_template_pauses_the_send(whatsapp_client, sandbox, number, marketing_template):
    sandbox.register_template(marketing_template, number.waba_id, status="PAUSED")

    with pytest.raises(errors.SendLevelError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert caught.value.code == 132015


def test_wrong_parameter_count_pauses_the_send(whatsapp_client, number, marketing_template):
    with pytest.raises(errors.SendLevelError) as caught:
        send(whatsapp_client, number, marketing_template, parameters=["only one"])

    assert caught.value.code == 132000
    assert "(1)" in caught.value.details and "(2)" in caught.value.details


def test_utility_template_on_marketing_messages_is_refused(
    whatsapp_client, number, utility_template
):
    with pytest.raises(errors.SendLevelError) as caught:
        send(whatsapp_client, number, utility_template, parameters=["A-17"], category="MARKETING")

    assert caught.value.code == 131055


def test_marketing_without_mm_lite_terms_is_refused(
    whatsapp_client, sandbox, number, marketing_template
):
    sandbox.register_number(number, mm_lite_terms_accepted=False)

    with pytest.raises(errors.SendLevelError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert caught.value.code == 131055


def test_injected_throughput_errors(whatsapp_client, sandbox, number, marketing_template):
    sandbox.configure(ratio_429=1.0)

    with pytest.raises(errors.ThroughputLimited) as caught:
        send(whatsapp_client, number, marketing_template)

    assert (caught.value.code, caught.value.http_status) == (130429, 429)


def test_injected_server_errors_are_transient(whatsapp_client, sandbox, number, marketing_template):
    sandbox.configure(ratio_5xx=1.0)

    with pytest.raises(errors.TransientError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert caught.value.http_status == 500


def test_injected_permanent_errors(whatsapp_client, sandbox, number, marketing_template):
    sandbox.configure(ratio_permanent=1.0, permanent_code=131050)

    with pytest.raises(errors.RecipientPermanentError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert caught.value.verdict == errors.RecipientVerdict(opts_out_marketing=True)


def test_injected_errors_follow_their_ratios(whatsapp_client, sandbox, number, marketing_template):
    sandbox.configure(ratio_429=0.25, ratio_5xx=0.25, seed=7)
    outcomes = []
    for n in range(200):
        try:
            send(whatsapp_client, number, marketing_template, to=f"+4477009{n:05d}")
            outcomes.append("sent")
        except errors.ThroughputLimited:
            outcomes.append("429")
        except errors.TransientError:
            outcomes.append("5xx")

    assert 20 <= outcomes.count("429") <= 80
    assert 20 <= outcomes.count("5xx") <= 80
    assert 60 <= outcomes.count("sent") <= 140


def test_a_closed_port_is_a_transient_error_that_never_reached_meta(
    make_client, number, marketing_template
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    whatsapp_client = make_client(base_url=f"http://127.0.0.1:{port}", timeout=(1, 1))

    with pytest.raises(errors.TransientError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert not caught.value.may_have_been_sent


def test_a_read_timeout_is_transient_and_may_have_been_sent(
    make_client, sandbox, number, marketing_template
):
    sandbox.configure(latency_ms=500)
    whatsapp_client = make_client(base_url=sandbox.url, timeout=(1, 0.1))

    with pytest.raises(errors.TransientError) as caught:
        send(whatsapp_client, number, marketing_template)

    assert caught.value.may_have_been_sent
    # Meta (the sandbox) still answers the abandoned request: it did reach it.
    wait_until(lambda: sandbox.stats()["http_statuses"] == {"200": 1}, timeout=5)


def test_latency_is_honoured(whatsapp_client, sandbox, number, marketing_template):
    sandbox.configure(latency_ms=150)

    started = time.monotonic()
    send(whatsapp_client, number, marketing_template)

    assert time.monotonic() - started >= 0.15


def test_requests_are_counted_per_phone(whatsapp_client, sandbox, number, marketing_template):
    send(whatsapp_client, number, marketing_template, to="+447700900001")
    send(whatsapp_client, number, marketing_template, to="+447700900001")
    send(whatsapp_client, number, marketing_template, to="+447700900002")
    with pytest.raises(errors.RecipientPermanentError):
        send(whatsapp_client, number, marketing_template, to=US_PHONE)

    assert sandbox.requests(phone="+447700900001")["count"] == 2
    assert sandbox.requests(phone="447700900002")["count"] == 1
    assert sandbox.requests(phone=US_PHONE) | {"requests": []} == {
        "count": 1,
        "accepted": 0,
        "requests": [],
    }
    stats = sandbox.stats()
    assert stats["requests"] == 4
    assert stats["accepted"] == 3
    assert stats["duplicate_recipients"] == 1
    assert stats["errors"] == {"131049": 1}


@pytest.fixture
def shop_template(sandbox, number):
    """A template with a text header parameter and a URL button parameter, as Meta has it."""
    template = MessageTemplateFactory(
        organization=number.organization,
        name="shop_sale",
        body_text="Hi {{1}}, {{2}} off!",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Sale for {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, {{2}} off!"},
            {
                "type": "BUTTONS",
                "buttons": [{"type": "URL", "text": "Shop", "url": "https://s.example/{{1}}"}],
            },
        ],
    )
    sandbox.register_template(template, number.waba_id)
    return template


def test_header_and_button_parameters_travel_in_their_own_components(
    whatsapp_client, sandbox, number, shop_template
):
    slots = shop_template.parameter_slots

    result = send(
        whatsapp_client,
        number,
        shop_template,
        parameters=("Ada", "20%", "Ada", "AB12"),
        slots=slots,
    )

    assert result.wamid.startswith("wamid.")
    [request] = sandbox.requests(phone=GB_PHONE)["requests"]
    assert request["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "Ada"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "20%"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "AB12"}],
        },
    ]
    assert request["parameters"] == ["Ada", "20%"]


@pytest.mark.parametrize(
    ("parameters", "detail"),
    [
        (("Ada", "20%", "Ada"),
         "buttons: number of parameters for button at index 0 (0) does not match the expected number of params (1)"),
        (("Ada", "20%"),
         "header: number of localizable_params (0) does not match the expected number of params (1)"),
    ],
)  # fmt: skip
def test_a_missing_header_or_button_parameter_is_metas_132000(
    whatsapp_client, sandbox, number, shop_template, parameters, detail
):
    slots = shop_template.parameter_slots[: len(parameters)]

    with pytest.raises(errors.SendLevelError) as caught:
        send(whatsapp_client, number, shop_template, parameters=parameters, slots=slots)

    assert caught.value.code == 132000
    assert caught.value.details == detail
