"""Size, then credentials, then the body: under HMAC the audience filter finds its organization
in the raw bytes (the first members, or X-Setter-Organization) and verifies the signature
before anything is parsed."""

import orjson
import pytest
from django.test import Client

from campaigns.models import AudienceFilterEvent
from setter.api import parsing
from setter.api.parsing import LEADING_MEMBER_BYTES, Missing, leading_member

from .conftest import FILTER_URL, filter_payload, filterable_send

pytestmark = pytest.mark.django_db


def lead_ids(count):
    return [{"externalId": f"lead-{n}"} for n in range(count)]


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'{"campaignId": 42, "sendId": 1}', 42),
        (b' \n{ "sendId" : 1 , "campaignId":7}', 7),
        (b'{"mode": "include", "x": {"campaignId": 1}, "campaignId": 3}', 3),
        (b'{"a\\"campaignId": 9, "campaignId": "12"}', "12"),
    ],
)
def test_the_leading_member_is_read_from_the_raw_bytes(body, value):
    assert leading_member(body, "campaignId") == value


@pytest.mark.parametrize(
    "body",
    [
        b'{"sendId": 1}',
        b"[1, 2]",
        b"{not json",
        b'{"leads": [' + b'{"externalId": "x"}, ' * 1000 + b'{}], "campaignId": 1}',
        b'{"x": "' + b"a" * (LEADING_MEMBER_BYTES - 28) + b'", "campaignId": 4242424242}',
    ],
    ids=["absent", "not-an-object", "malformed", "after-the-window", "cut-by-the-window"],
)
def test_a_member_not_wholly_in_the_window_is_missing(body):
    with pytest.raises(Missing):
        leading_member(body, "campaignId")


def test_the_seeds_body_order_signs_without_a_header(hmac_partner, post_webhook):
    send = filterable_send(hmac_partner.organization)

    response = post_webhook(FILTER_URL, filter_payload(send), hmac_partner.signature)

    assert response.status_code == 200


def test_campaign_id_after_a_long_lead_list_needs_the_organization_header(
    hmac_partner, post_webhook
):
    send = filterable_send(hmac_partner.organization)
    payload = {"leads": lead_ids(500), "mode": "include", "sendId": send.pk}
    payload["campaignId"] = send.campaign_id

    unnamed = post_webhook(FILTER_URL, payload, hmac_partner.signature)
    named = post_webhook(
        FILTER_URL,
        payload,
        lambda body: {
            **hmac_partner.signature(body),
            "X-Setter-Organization": hmac_partner.organization.slug,
        },
    )

    assert unnamed.status_code == 400
    assert [e["field"] for e in unnamed.json()["errors"]] == ["campaignId"]
    assert "X-Setter-Organization" in unnamed.json()["errors"][0]["message"]
    assert named.status_code == 200 and named.json()["leadCount"] == 500
    assert AudienceFilterEvent.objects.count() == 1


def test_a_wrong_signature_is_refused_without_parsing_the_body(
    hmac_partner, post_webhook, monkeypatch
):
    send = filterable_send(hmac_partner.organization)
    parsed = []
    monkeypatch.setattr(
        parsing.OrjsonParser, "parse", lambda self, stream, *args, **kwargs: parsed.append(stream)
    )

    response = post_webhook(
        FILTER_URL, filter_payload(send, leads=lead_ids(10_000)), {"X-Setter-Signature": "sha256=0"}
    )

    assert response.status_code == 401 and parsed == []


def test_an_unknown_api_key_is_refused_without_reading_the_body(api_key_partner, client):
    send = filterable_send(api_key_partner.organization)
    body = orjson.dumps(filter_payload(send, leads=lead_ids(10_000)))

    response = client.post(
        FILTER_URL, body, content_type="application/json", headers={"Authorization": "Bearer x"}
    )

    assert response.status_code == 401
    assert response.wsgi_request._body == b""  # never read (and released)


def test_a_declared_length_over_the_limit_is_refused_before_reading(api_key_partner, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    send = filterable_send(api_key_partner.organization)
    body = orjson.dumps(filter_payload(send, leads=lead_ids(100)))

    response = Client().generic(
        "POST",
        FILTER_URL,
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key_partner.api_key}"},
    )

    assert response.status_code == 413
    assert response.wsgi_request._read_started is False


def test_a_parsed_body_is_released_when_the_request_ends(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization)

    response = post_webhook(
        FILTER_URL, filter_payload(send, leads=lead_ids(100)), api_key_partner.bearer()
    )

    assert response.status_code == 200
    assert response.wsgi_request._body == b""
