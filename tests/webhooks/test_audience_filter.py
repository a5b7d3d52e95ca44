"""POST /api/v1/webhooks/campaigns/audience-filter, as seed 000 specifies it."""

import datetime as dt

import orjson
import pytest
from django.conf import settings
from django.utils import timezone

from campaigns.audience_filters import SendConflict, filter_deadline, record_audience_filter
from campaigns.materializer import materialize_send
from campaigns.models import AudienceFilterEvent, Campaign, Send, SendRecipient
from tests.factories import AudienceFactory, LeadFactory, OrganizationFactory

from .conftest import FILTER_URL, filter_payload, filterable_send

pytestmark = pytest.mark.django_db


def test_first_delivery_is_accepted_and_stored(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization)
    leads = [
        {"externalId": "crm-001"},
        {"phoneE164": "+44 7700 900123"},
        {"externalId": "crm-002", "phoneE164": "+447700900456"},
    ]

    response = post_webhook(
        FILTER_URL, filter_payload(send, "include", leads), api_key_partner.bearer()
    )

    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "leadCount": 3}
    event = AudienceFilterEvent.objects.get()
    assert (event.send, event.organization, event.mode) == (
        send,
        api_key_partner.organization,
        "include",
    )
    assert event.external_ids == ["crm-001", "crm-002"]
    assert event.phones_e164 == ["+447700900123", "+447700900456"]
    assert event.lead_count == 3


def test_payload_phones_are_normalised_like_audience_phones(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization)
    leads = [
        {"phoneE164": "15551234567"},
        {"phoneE164": "+1 (555) 765-4321"},
        {"phoneE164": "0044 20 7946 0018"},
        {"phoneE164": "not a phone"},
    ]

    response = post_webhook(FILTER_URL, filter_payload(send, leads=leads), api_key_partner.bearer())

    assert response.json() == {"status": "accepted", "leadCount": 4}
    # A phone that cannot be a number can never match a lead: it is kept out, not refused.
    assert AudienceFilterEvent.objects.get().phones_e164 == [
        "+15551234567",
        "+15557654321",
        "+442079460018",
    ]


def test_exact_replay_is_already_received_and_stores_nothing(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization)
    payload = filter_payload(send, "exclude", [{"externalId": "a"}, {"phoneE164": "+15551234567"}])
    post_webhook(FILTER_URL, payload, api_key_partner.bearer())

    # Same mode and leads, keys reordered and spaced differently: still the same payload.
    reordered = (
        b'{ "leads": [ {"externalId":"a"}, {"phoneE164":"+15551234567"} ], "mode": "exclude", '
        + f'"sendId": {send.pk}, "campaignId": {send.campaign_id} }}'.encode()
    )
    response = post_webhook(FILTER_URL, reordered, api_key_partner.bearer())

    assert response.status_code == 200
    assert response.json() == {"status": "already_received"}
    assert AudienceFilterEvent.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"mode": "include"}, id="other mode"),
        pytest.param({"leads": [{"phoneE164": "+15551234567"}, {"externalId": "a"}]}, id="order"),
        pytest.param({"leads": [{"externalId": "a"}]}, id="fewer leads"),
    ],
)
def test_a_different_payload_is_a_new_filter_event(api_key_partner, post_webhook, change):
    send = filterable_send(api_key_partner.organization)
    payload = filter_payload(send, "exclude", [{"externalId": "a"}, {"phoneE164": "+15551234567"}])
    post_webhook(FILTER_URL, payload, api_key_partner.bearer())

    response = post_webhook(FILTER_URL, {**payload, **change}, api_key_partner.bearer())

    assert response.json()["status"] == "accepted"
    assert AudienceFilterEvent.objects.filter(send=send).count() == 2


def test_the_latest_filter_event_is_the_one_materialized(api_key_partner, post_webhook):
    organization = api_key_partner.organization
    send = filterable_send(organization, campaign__status=Campaign.Status.SCHEDULED)
    audience = AudienceFactory(organization=organization)
    send.campaign.audiences.add(audience)
    LeadFactory(audience=audience, external_id="first", phone_e164="+447700900001")
    LeadFactory(audience=audience, external_id="second", phone_e164="+447700900002")
    latest = LeadFactory(audience=audience, external_id="third", phone_e164="+447700900003")

    post_webhook(
        FILTER_URL,
        filter_payload(send, "include", [{"externalId": "first"}]),
        api_key_partner.bearer(),
    )
    post_webhook(
        FILTER_URL,
        filter_payload(send, "include", [{"phoneE164": "447700900003"}, {"externalId": "nobody"}]),
        api_key_partner.bearer(),
    )
    materialize_send(send.pk)

    assert list(SendRecipient.objects.filter(send=send).values_list("phone_e164", flat=True)) == [
        latest.phone_e164
    ]


def test_a_send_of_another_organization_answers_like_a_missing_send(api_key_partner, post_webhook):
    other_send = filterable_send(OrganizationFactory())
    own_send = filterable_send(api_key_partner.organization)

    foreign = post_webhook(FILTER_URL, filter_payload(other_send), api_key_partner.bearer())
    missing = post_webhook(
        FILTER_URL,
        {**filter_payload(own_send), "sendId": other_send.pk + 1000},
        api_key_partner.bearer(),
    )

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"] == missing.json()["error"] == "not_found"
    assert AudienceFilterEvent.objects.count() == 0


def test_the_send_must_belong_to_the_named_campaign(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization)
    other_campaign_send = filterable_send(api_key_partner.organization)

    response = post_webhook(
        FILTER_URL,
        {**filter_payload(send), "campaignId": other_campaign_send.campaign_id},
        api_key_partner.bearer(),
    )

    assert response.status_code == 404
    assert AudienceFilterEvent.objects.count() == 0


def test_a_send_that_is_not_pending_refuses_filters(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization, status=Send.Status.MATERIALIZED)

    response = post_webhook(FILTER_URL, filter_payload(send), api_key_partner.bearer())

    assert response.status_code == 409
    assert response.json()["error"] == "send_not_pending"
    assert "materialized" in response.json()["detail"]
    assert AudienceFilterEvent.objects.count() == 0


def test_a_send_with_the_audience_filter_off_refuses_filters(api_key_partner, post_webhook):
    send = filterable_send(
        api_key_partner.organization, audience_filter_mode=Send.AudienceFilterMode.OFF
    )

    response = post_webhook(FILTER_URL, filter_payload(send), api_key_partner.bearer())

    assert response.status_code == 409
    assert response.json()["error"] == "audience_filter_off"
    assert "audience filter" in response.json()["detail"]
    assert AudienceFilterEvent.objects.count() == 0


def test_the_deadline_is_five_minutes_before_the_send_fires(api_key_partner):
    send = filterable_send(api_key_partner.organization)
    deadline = filter_deadline(send)
    assert deadline == send.scheduled_for - dt.timedelta(minutes=5)
    arguments = {
        "organization": api_key_partner.organization,
        "campaign_id": send.campaign_id,
        "send_id": send.pk,
        "mode": "include",
    }

    before = record_audience_filter(
        **arguments, leads=[{"externalId": "a"}], now=deadline - dt.timedelta(seconds=1)
    )
    with pytest.raises(SendConflict) as at_deadline:
        record_audience_filter(**arguments, leads=[{"externalId": "b"}], now=deadline)
    with pytest.raises(SendConflict) as after:
        record_audience_filter(
            **arguments, leads=[{"externalId": "c"}], now=deadline + dt.timedelta(seconds=1)
        )

    assert before.status == "accepted"
    assert at_deadline.value.get_codes() == after.value.get_codes() == "filter_deadline_passed"
    assert f"{deadline:%Y-%m-%dT%H:%M:%S}Z" in str(after.value.detail)
    assert AudienceFilterEvent.objects.get().external_ids == ["a"]


def test_a_filter_after_the_deadline_gets_409_naming_it(api_key_partner, post_webhook):
    late = filterable_send(
        api_key_partner.organization,
        scheduled_for=timezone.now() + dt.timedelta(minutes=5) - dt.timedelta(seconds=30),
    )
    in_time = filterable_send(
        api_key_partner.organization,
        scheduled_for=timezone.now() + dt.timedelta(minutes=5) + dt.timedelta(seconds=30),
    )

    refused = post_webhook(FILTER_URL, filter_payload(late), api_key_partner.bearer())
    accepted = post_webhook(FILTER_URL, filter_payload(in_time), api_key_partner.bearer())

    assert refused.status_code == 409
    assert refused.json()["error"] == "filter_deadline_passed"
    assert f"{filter_deadline(late):%Y-%m-%dT%H:%M:%S}Z" in refused.json()["detail"]
    assert accepted.status_code == 200
    assert list(AudienceFilterEvent.objects.values_list("send", flat=True)) == [in_time.pk]


def test_a_replay_after_the_deadline_is_still_already_received(api_key_partner):
    send = filterable_send(api_key_partner.organization)
    arguments = {
        "organization": api_key_partner.organization,
        "campaign_id": send.campaign_id,
        "send_id": send.pk,
        "mode": "include",
        "leads": [{"externalId": "a"}],
    }
    record_audience_filter(**arguments)

    retry = record_audience_filter(**arguments, now=send.scheduled_for)

    assert retry.status == "already_received"
    assert AudienceFilterEvent.objects.count() == 1


def lead_ids(count):
    return [{"externalId": f"lead-{n}"} for n in range(count)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"mode": "maybe"}, "mode", id="unknown mode"),
        pytest.param({"mode": "Include"}, "mode", id="mode is case-sensitive"),
        pytest.param({"campaignId": "42"}, "campaignId", id="campaignId as a string"),
        pytest.param({"sendId": None}, "sendId", id="sendId null"),
        pytest.param({"sendId": True}, "sendId", id="sendId boolean"),
        pytest.param({"leads": []}, "leads", id="no leads"),
        pytest.param({"leads": lead_ids(100_001)}, "leads", id="100001 leads"),
        pytest.param({"leads": {"externalId": "a"}}, "leads", id="leads not a list"),
        pytest.param({"leads": [{"externalId": "a"}, {}]}, "leads[1]", id="lead without keys"),
        pytest.param(
            {"leads": [{"externalId": "a"}] * 3 + [{"phoneE164": 15551234567}]},
            "leads[3].phoneE164",
            id="phone as a number",
        ),
        pytest.param({"leads": ["abc"]}, "leads[0]", id="lead not an object"),
    ],
)
def test_invalid_bodies_get_400_with_the_field_path(api_key_partner, post_webhook, change, field):
    send = filterable_send(api_key_partner.organization)

    response = post_webhook(
        FILTER_URL, {**filter_payload(send), **change}, api_key_partner.bearer()
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert [error["field"] for error in body["errors"]] == [field]
    assert AudienceFilterEvent.objects.count() == 0


def test_missing_fields_are_each_named(api_key_partner, post_webhook):
    response = post_webhook(FILTER_URL, {"mode": "include"}, api_key_partner.bearer())

    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"campaignId", "sendId", "leads"}


@pytest.mark.parametrize(
    "body", [b'{"campaignId": 42, "sendId":', b"[1, 2]", b"nonsense", b'"text"'], ids=repr
)
def test_malformed_json_gets_400(api_key_partner, post_webhook, body):
    filterable_send(api_key_partner.organization)

    response = post_webhook(FILTER_URL, body, api_key_partner.bearer())

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert [error["field"] for error in response.json()["errors"]] == ["$"]
    assert AudienceFilterEvent.objects.count() == 0


def test_100000_leads_over_djangos_upload_limit_are_accepted(api_key_partner, post_webhook):
    send = filterable_send(api_key_partner.organization)
    leads = [
        {"externalId": f"crm-lead-{n:07d}"} if n % 2 else {"phoneE164": f"+4479{n:08d}"}
        for n in range(100_000)
    ]
    body = orjson.dumps(filter_payload(send, "include", leads))
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = post_webhook(FILTER_URL, body, api_key_partner.bearer())

    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "leadCount": 100_000}
    event = AudienceFilterEvent.objects.get()
    assert (len(event.external_ids), len(event.phones_e164)) == (50_000, 50_000)


def test_a_body_over_the_webhook_limit_gets_413_and_stores_nothing(
    api_key_partner, post_webhook, settings
):
    settings.WEBHOOK_MAX_BODY_BYTES = 1_000_000
    send = filterable_send(api_key_partner.organization)
    body = orjson.dumps(filter_payload(send, "include", lead_ids(60_000)))
    assert len(body) > 1_000_000

    response = post_webhook(FILTER_URL, body, api_key_partner.bearer())

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert AudienceFilterEvent.objects.count() == 0


def test_a_body_that_is_not_json_gets_415(api_key_partner, client):
    send = filterable_send(api_key_partner.organization)

    response = client.post(
        FILTER_URL,
        {"campaignId": send.campaign_id, "sendId": send.pk},
        headers=api_key_partner.bearer(),
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert AudienceFilterEvent.objects.count() == 0
