"""Seed contracts honoured exactly through the campaign and segment API (issue 11 points 5,
9, 10, 11 and issue 12's integer bounds): each input is taken as the seed writes it or refused
with a 400/409 naming it."""

import datetime as dt

import pytest

from audiences.models import LeadEvent
from campaigns.materializer import materialize_send
from campaigns.models import Campaign, SendRecipient
from tests.factories import AudienceFactory, LeadFactory

pytestmark = pytest.mark.django_db

LONDON_9AM = {"localDate": "2031-03-01", "localTime": "09:00", "timeZone": "Europe/London"}
SEED_001_FILTER = {"mode": "exclude", "eventType": "webinar_attended", "within": {"minutes": 120}}


def send_body(**overrides):
    return {
        "template": "spring_sale",
        "parameters": ["{{ lead.first_name }}", "20%"],
        "schedule": LONDON_9AM,
        **overrides,
    }


# --- 11.9: seed 001's event filter ------------------------------------------------------------


def test_the_seed_001_event_filter_is_taken_and_shown_as_written(api, body):
    response = api.post("campaigns", body(sends=[send_body(eventFilter=SEED_001_FILTER)]))

    assert response.status_code == 201
    assert response.json()["campaign"]["sends"][0]["eventFilter"] == SEED_001_FILTER
    send = Campaign.objects.get().sends.get()
    assert (send.event_filter_mode, send.event_filter_within_minutes) == ("exclude", 120)


def test_a_filter_without_a_window_matches_any_time(api, body):
    sticky = {"mode": "exclude", "eventType": "mastery_purchase"}
    response = api.post("campaigns", body(sends=[send_body(eventFilter=sticky)]))

    assert response.json()["campaign"]["sends"][0]["eventFilter"] == sticky | {"within": None}


@pytest.mark.parametrize(
    ("within", "message"),
    [
        ({"minutes": 0}, "eventFilter.within.minutes: A window of 1 to 525,600 minutes"),
        ({"minutes": -5}, "eventFilter.within.minutes: A window of 1 to 525,600 minutes"),
        ({"minutes": 525_601}, "eventFilter.within.minutes: A window of 1 to 525,600 minutes"),
        ({"minutes": 2_147_483_648}, "eventFilter.within.minutes: A window of 1 to 525,600"),
        ({"minutes": 1.5}, "eventFilter.within.minutes: required: a whole number of minutes"),
        ({"minutes": "120"}, "eventFilter.within.minutes: required: a whole number of minutes"),
        ({}, "eventFilter.within.minutes: required: a whole number of minutes"),
        (120, 'eventFilter.within: expected an object like {"minutes": 120}'),
        ({"minutes": 120, "hours": 2}, "eventFilter.within.hours: unknown key"),
    ],
)
def test_a_window_that_is_not_1_to_525600_minutes_is_a_400(api, body, within, message):
    event_filter = SEED_001_FILTER | {"within": within}
    response = api.post("campaigns", body(sends=[send_body(eventFilter=event_filter)]))

    assert response.status_code == 400
    assert response.json()["message"].startswith(f"sends[0].{message}")
    assert not Campaign.objects.exists()


def test_the_old_within_minutes_spelling_is_refused_not_dropped(api, body):
    event_filter = {"mode": "exclude", "eventType": "attended", "withinMinutes": 120}
    response = api.post("campaigns", body(sends=[send_body(eventFilter=event_filter)]))

    assert response.status_code == 400
    assert "sends[0].eventFilter.withinMinutes: unknown key" in response.json()["message"]


def _started(api, body, send, campaign_id="c1"):
    assert api.post("campaigns", body(id=campaign_id, sends=[send])).status_code == 201
    started = api.post(f"campaigns/{campaign_id}/start")
    assert started.status_code == 200, started.json()
    return started.json()["campaign"]


def test_the_window_filters_the_materialized_recipients(api, body, segment):
    inside, outside, never = segment.leads.order_by("pk")
    campaign = _started(
        api, body, send_body(schedule={"startOffsetMinutes": 10}, eventFilter=SEED_001_FILTER)
    )
    send_id = campaign["sends"][0]["sendId"]
    fire_at = dt.datetime.fromisoformat(campaign["sends"][0]["scheduledFor"])
    for lead, minutes_before in ((inside, 119), (outside, 121)):
        LeadEvent.objects.create(
            organization=api.organization,
            phone_e164=lead.phone_e164,
            event_type="webinar_attended",
            occurred_at=fire_at - dt.timedelta(minutes=minutes_before),
        )

    materialize_send(send_id)

    phones = set(SendRecipient.objects.filter(send_id=send_id).values_list("phone_e164", flat=True))
    assert phones == {outside.phone_e164, never.phone_e164}


# --- 11.11: the audience-filter webhook for API-created campaigns -----------------------------


def test_an_api_campaign_is_filtered_by_the_webhook_with_its_integer_ids(
    client, api, body, segment
):
    keep, drop, _ = segment.leads.order_by("pk")
    campaign = _started(
        api, body, send_body(schedule={"startOffsetMinutes": 30}, audienceFilter="webhook_filtered")
    )
    assert campaign["campaignId"] == Campaign.objects.get(api_id="c1").pk
    send_id = campaign["sends"][0]["sendId"]

    filtered = client.post(
        "/api/v1/webhooks/campaigns/audience-filter",
        {
            "campaignId": campaign["campaignId"],
            "sendId": send_id,
            "mode": "include",
            "leads": [{"externalId": keep.external_id}, {"phoneE164": "+15550000000"}],
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}"},
    )
    materialize_send(send_id)

    assert filtered.status_code == 200
    assert filtered.json() == {"status": "accepted", "leadCount": 2}
    phones = list(
        SendRecipient.objects.filter(send_id=send_id).values_list("phone_e164", flat=True)
    )
    assert phones == [keep.phone_e164]
    assert drop.phone_e164 not in phones


def test_a_filter_for_a_send_with_the_filter_off_names_the_editors_toggle(client, api, body):
    campaign = _started(api, body, send_body(schedule={"startOffsetMinutes": 30}))

    response = client.post(
        "/api/v1/webhooks/campaigns/audience-filter",
        {
            "campaignId": campaign["campaignId"],
            "sendId": campaign["sends"][0]["sendId"],
            "mode": "include",
            "leads": [{"externalId": "x"}],
        },
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}"},
    )

    assert response.status_code == 409
    # The labels the campaign editor shows for the field and its choice.
    assert (
        "set “Audience filter mode” to “Filtered by inbound webhook”" in (response.json()["detail"])
    )


# --- 11.5: start with scheduledFor never fires a send before it -------------------------------


def test_a_start_after_a_sends_own_time_is_a_409_naming_it(api, body):
    sends = [
        send_body(name="teaser"),  # 2031-03-01 09:00 London
        send_body(schedule={"startOffsetMinutes": 0}),
        send_body(name="late", schedule=LONDON_9AM | {"localDate": "2031-04-01"}),
    ]
    api.post("campaigns", body(id="c1", sends=sends))

    response = api.post("campaigns/c1/start", {"scheduledFor": "2031-03-15T00:00:00Z"})

    assert response.status_code == 409
    assert response.json()["message"] == (
        "scheduledFor 2031-03-15T00:00:00Z is after send 1 (teaser) at 2031-03-01T09:00:00Z: "
        "these would fire before it. Move them, or start earlier."
    )
    assert Campaign.objects.get().status == Campaign.Status.DRAFT


def test_a_start_before_every_own_time_schedules(api, body):
    api.post("campaigns", body(id="c1", sends=[send_body()]))

    response = api.post("campaigns/c1/start", {"scheduledFor": "2031-03-01T09:00:00Z"})

    assert response.status_code == 200
    assert response.json()["campaign"]["status"] == "scheduled"


# --- 11.10: seed 003's deviations -------------------------------------------------------------


def test_a_campaign_without_a_name_gets_one(api, body):
    data = body(id="spring")
    del data["name"]

    response = api.post("campaigns", data)

    assert response.status_code == 201
    assert response.json()["campaign"]["name"] == "Campaign spring"


def test_a_campaign_name_cannot_be_emptied(api, body):
    api.post("campaigns", body(id="c1"))

    response = api.patch("campaigns/c1", {"name": "  "})

    assert response.status_code == 400
    assert response.json()["message"] == "name: may not be empty"


@pytest.mark.parametrize(("given", "status"), [("user", 200), ("channel", 400), ("users", 400)])
def test_a_segment_type_is_user_or_a_400(api, given, status):
    response = api.post("segments", {"name": "Everyone", "type": given, "allUsers": True})

    assert response.status_code == status
    if status == 400:
        assert response.json()["message"].startswith("type: expected user")


@pytest.mark.parametrize(
    ("code", "matches"), [("GB", True), ("GBR", True), ("gbr", True), ("USA", False)]
)
def test_a_country_filter_takes_alpha_2_and_alpha_3(api, organization, code, matches):
    lead = LeadFactory(audience=AudienceFactory(organization=organization), region="GB")

    created = api.post("segments", {"name": "UK", "filter": {"country": code}})
    segment_id = created.json()["data"]["id"]
    targets = api.post(f"segments/{segment_id}/targets/query", {}).json()["targets"]

    assert created.status_code == 200
    assert [t["targetId"] for t in targets] == ([str(lead.pk)] if matches else [])


@pytest.mark.parametrize("code", ["UK", "XX", "U", "United Kingdom", 44])
def test_a_country_that_is_no_iso_code_is_a_400(api, code):
    response = api.post("segments", {"name": "UK", "filter": {"country": code}})

    assert response.status_code == 400
    assert "country" in response.json()["message"]
    assert "ISO 3166" in response.json()["message"]


def test_target_queries_page_back_with_prev(api, organization):
    segment = AudienceFactory(organization=organization)
    leads = [LeadFactory(audience=segment) for _ in range(5)]
    ids = [str(lead.pk) for lead in leads]
    path = f"segments/{segment.pk}/targets/query"

    first = api.post(path, {"limit": 2}).json()
    second = api.post(path, {"limit": 2, "next": first["next"]}).json()
    third = api.post(path, {"limit": 2, "next": second["next"]}).json()
    back = api.post(path, {"limit": 2, "prev": third["prev"]}).json()
    front = api.post(path, {"limit": 2, "prev": back["prev"]}).json()

    assert [[t["targetId"] for t in page["targets"]] for page in (first, second, third)] == [
        ids[0:2],
        ids[2:4],
        ids[4:5],
    ]
    assert (first["prev"], third["next"]) == (None, None)
    assert [t["targetId"] for t in back["targets"]] == ids[2:4]
    assert [t["targetId"] for t in front["targets"]] == ids[0:2]
    assert front["prev"] is None and front["next"] is not None


def test_next_and_prev_together_are_a_400(api, organization):
    segment = AudienceFactory(organization=organization)

    response = api.post(f"segments/{segment.pk}/targets/query", {"next": "a", "prev": "b"})

    assert response.status_code == 400
    assert response.json()["message"] == "next and prev: give only one of them"


# --- 12.3: every integer input has a bound checked before the database ------------------------


@pytest.mark.parametrize(
    ("send", "message"),
    [
        (
            {"maxMessagesPerSecond": 2_147_483_648},
            "maxMessagesPerSecond: an integer from 1 to 1000",
        ),
        (
            {"schedule": {"startOffsetMinutes": 2_147_483_648}},
            "schedule.startOffsetMinutes: a whole number of minutes from 0 to 527,040",
        ),
    ],
)
def test_an_integer_past_its_bound_is_a_400(api, body, send, message):
    response = api.post("campaigns", body(sends=[send_body(**send)]))

    assert response.status_code == 400
    assert response.json()["message"].startswith(f"sends[0].{message}")


@pytest.mark.parametrize("limit", [0, 10_001, 2**63, -1, 2.5])
def test_a_query_limit_past_its_bound_is_a_400(api, limit):
    response = api.post("segments/query", {"limit": limit})

    assert response.status_code == 400
    assert response.json()["message"].startswith("limit: expected an integer from 1 to")


def test_a_webhook_id_past_a_bigint_is_a_400(client, api):
    response = client.post(
        "/api/v1/webhooks/campaigns/audience-filter",
        {"campaignId": 2**63, "sendId": 1, "mode": "include", "leads": [{"externalId": "x"}]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}"},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "campaignId"


def test_a_segment_keeps_the_id_its_partner_chose(api, body):
    created = api.post("segments", {"id": "vip-2031", "name": "VIP", "type": "user"})

    assert created.status_code == 200
    assert created.json()["data"]["id"] == "vip-2031"
    assert api.get("segments/vip-2031").json()["segment"]["id"] == "vip-2031"
    campaign = api.post("campaigns", body(segmentIds=["vip-2031"]))
    assert campaign.status_code == 201
    assert campaign.json()["campaign"]["segmentIds"] == ["vip-2031"]


def test_a_taken_segment_id_is_a_409_within_the_organization_only(api, client):
    from tests.campaigns.api.conftest import Api
    from tests.factories import OrganizationFactory

    api.post("segments", {"id": "vip", "name": "VIP"})

    again = api.post("segments", {"id": "vip", "name": "VIP again", "persons": []})
    elsewhere = Api(client, OrganizationFactory()).post("segments", {"id": "vip", "name": "VIP"})

    assert again.status_code == 409
    assert again.json()["message"] == "id: a segment with id 'vip' already exists"
    assert elsewhere.status_code == 200


@pytest.mark.parametrize("bad", ["12", "has space", "query", "-x", "x" * 101])
def test_a_segment_id_that_cannot_be_one_is_a_400(api, bad):
    response = api.post("segments", {"id": bad, "name": "VIP"})

    assert response.status_code == 400
    assert response.json()["message"].startswith("id: ")


def test_the_editor_bounds_the_window_like_the_api(organization):
    from django.core.exceptions import ValidationError

    from campaigns import services
    from tests.factories import SendFactory

    send = SendFactory(
        campaign__organization=organization,
        event_filter_mode="exclude",
        event_filter_type="attended",
        event_filter_within_minutes=525_601,
    )

    with pytest.raises(ValidationError) as refused:
        services.validate_send(send)

    assert "event_filter_within_minutes" in refused.value.message_dict


# --- 12.4: the published schema says what the server does ------------------------------------


def test_the_schema_declares_local_time_as_a_wall_clock_and_nullable_fields_nullable():
    from tests.api_schema import published_schema

    components = published_schema()["components"]["schemas"]
    local_time = components["Schedule"]["properties"]["localTime"]
    event_filter = components["SendObject"]["properties"]["eventFilter"]
    within = components["EventFilter"]["properties"]["within"]

    assert "format" not in local_time and local_time["pattern"].startswith("^(?:[01]")
    assert event_filter.get("nullable") is True
    assert within.get("nullable") is True
    assert components["CampaignBody"]["additionalProperties"] is False
    assert components["EventFilter"]["additionalProperties"] is False
    assert "additionalProperties" not in components["QueryRequest"]["properties"]["filter"] or (
        components["QueryRequest"]["properties"]["filter"]["additionalProperties"] is not False
    )
