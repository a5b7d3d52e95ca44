"""The campaign REST API (seed 003): create, get, update, start, stop, delete, query, preview;
every refusal names its place and changes nothing."""

import datetime as dt

import pytest
from django.utils import timezone

from audiences.models import Audience
from campaigns.models import Campaign, Send
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    MessageTemplateFactory,
    SendFactory,
)

pytestmark = pytest.mark.django_db


def error(code: int, message: str) -> dict:
    phrase = {400: "Bad Request", 404: "Not Found", 409: "Conflict"}[code]
    return {"statusCode": code, "message": message, "error": phrase}


def test_a_created_campaign_reads_back_as_it_was_given(api, body, sender, segment):
    created = api.post("campaigns", body(id="spring-2031", description="Big one"))

    assert created.status_code == 201
    campaign = created.json()["campaign"]
    assert api.get("campaigns/spring-2031").json() == {"campaign": campaign}
    assert campaign | {"createdAt": None, "updatedAt": None, "sends": None} == {
        "id": "spring-2031",
        "campaignId": Campaign.objects.get().pk,
        "name": "Spring sale",
        "description": "Big one",
        "status": "draft",
        "paused": False,
        "statusReason": "",
        "senderId": sender.phone_number_id,
        "segmentIds": [str(segment.pk)],
        "productPolicyConfirmed": True,
        "productPolicy": "CLOUD_API_FALLBACK",
        "scheduledFor": "2031-03-01T09:00:00Z",
        "stopAt": None,
        "sendWindow": None,
        "createdAt": None,
        "updatedAt": None,
        "stats": {
            "startedAt": None,
            "completedAt": None,
            "messagesSent": 0,
            "recipients": 0,
            "counts": dict.fromkeys(
                [
                    "queued",
                    "claimed",
                    "sending",
                    "sent",
                    "delivered",
                    "read",
                    "failed",
                    "skipped",
                    "unknown",
                ],
                0,
            ),
            "limitedReporting": 0,
            "progress": 0.0,
        },
        "sends": None,
        "warnings": [],
    }
    [send] = campaign["sends"]
    assert send["sendId"] == Send.objects.get().pk
    assert send["id"] == str(send["sendId"])
    assert send["template"] == "spring_sale"
    assert send["language"] == "en_US"
    assert send["category"] == "MARKETING"
    assert send["parameters"] == ["{{ lead.first_name }}", "20%"]
    assert send["schedule"] == {
        "localDate": "2031-03-01",
        "localTime": "09:00:00",
        "timeZone": "Europe/London",
        "recipientLocalTime": False,
    }
    assert send["scheduledFor"] == "2031-03-01T09:00:00Z"  # GMT in March
    assert send["status"] == "pending"
    # The admin shows the API's literal as a quoted literal.
    assert Send.objects.get().parameter_mapping == ["{{ lead.first_name }}", '"20%"']


def test_without_an_id_the_campaign_gets_a_uuid(api, body):
    campaign_id = api.post("campaigns", body()).json()["campaign"]["id"]

    assert len(campaign_id) == 36
    assert Campaign.objects.get().api_id == campaign_id


def test_an_admin_created_campaign_has_an_api_id_too(api):
    campaign = CampaignFactory(organization=api.organization)

    assert api.get(f"campaigns/{campaign.api_id}").status_code == 200


def test_a_taken_id_is_a_conflict(api, body):
    api.post("campaigns", body(id="spring"))

    response = api.post("campaigns", body(id="spring"))

    assert response.status_code == 409
    assert response.json() == error(409, "id: a campaign with id 'spring' already exists")
    assert Campaign.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"senderId": "999"}, "senderId: no WhatsApp number of yours has id '999'"),
        ({"segmentIds": ["424242"]}, "segmentIds[0]: no segment '424242'"),
        ({"segmentIds": [str(n) for n in range(26)]}, "segmentIds: at most 25 ids, got 26"),
        ({"segmentIds": None, "userIds": [str(n) for n in range(1001)]}, "userIds: at most 1,000 ids, got 1,001"),
        ({"segmentIds": None}, "segmentIds: required (or userIds / leadIds)"),
        ({"segmentIds": []}, "segmentIds: expected a non-empty list of ids"),
        ({"name": 7}, "name: expected a string"),
        ({"id": "has space"}, "id: 1 to 100 characters: letters, digits and . _ : - (not first)"),
        ({"id": "query"}, "id: 'query' is reserved"),
        ({"stopAt": "tomorrow"}, "stopAt: expected an ISO 8601 instant with an offset, e.g. 2030-01-31T09:00:00Z"),
        ({"sends": []}, "sends: expected a non-empty list of sends"),
    ],
)  # fmt: skip
def test_a_wrong_campaign_field_is_named_and_nothing_is_stored(api, body, change, message):
    response = api.post("campaigns", body(**change))

    assert response.status_code == 400
    assert response.json() == error(400, message)
    assert not Campaign.objects.exists()
    assert not Audience.objects.filter(hidden=True).exists()


SEND = {"template": "spring_sale", "parameters": ["{{ lead.first_name }}", "20%"]}


@pytest.mark.parametrize(
    ("send", "message"),
    [
        ({"template": "nope"}, "sends[1].template: no template 'nope'"),
        ({"language": "es_ES"}, "sends[1].template: no template 'spring_sale' in es_ES"),
        ({"parameters": ["x"]}, "sends[1].parameters: The template has 2 parameter(s) but the mapping gives 1."),
        ({"parameters": ["a", "{% load static %}"]},
         "sends[1].parameters[1]: template syntax error: {% load %} is not allowed: only the if, for, with, firstof tags are"),
        ({"parameters": ["a", "{{ lead.first_name|nope }}"]},
         "sends[1].parameters[1]: template syntax error: Invalid filter: 'nope'"),
        ({"parameters": ["a", 7, None][1:]}, "sends[1].parameters[1]: expected a string"),
        ({"category": "PROMO"}, "sends[1].category: one of MARKETING, UTILITY"),
        ({"schedule": {"localDate": "2031-03-30", "localTime": "01:30", "timeZone": "Europe/London"}},
         "sends[1].schedule: 01:30 on 2031-03-30 does not exist in Europe/London: clocks jump from 01:00 to 02:00"),
        ({"schedule": {"localDate": "2031-03-01", "localTime": "09:00", "timeZone": "Mars/Base"}},
         "sends[1].schedule.timeZone: Unknown time zone 'Mars/Base': pick an IANA zone such as Europe/London."),
        ({"schedule": {"scheduledFor": "2031-03-01T09:00:00Z", "startOffsetMinutes": 5}},
         "sends[1].schedule: give one of scheduledFor, localDate, startOffsetMinutes, not scheduledFor and startOffsetMinutes"),
        ({"schedule": {"startOffsetMinutes": -1}},
         "sends[1].schedule.startOffsetMinutes: a whole number of minutes from 0 to 527,040 (366 days)"),
        ({"schedule": {"scheduledFor": "9999-12-31T23:00:00-05:00"}},
         "sends[1].schedule.scheduledFor: '9999-12-31T23:00:00-05:00' is outside the years 1970–9000"),
        ({"schedule": {"localDate": "9999-12-31", "localTime": "23:59", "timeZone": "America/New_York"}},
         "sends[1].schedule: 9999-12-31 is outside the years 1970–9000"),
        ({"maxMessagesPerSecond": 0}, "sends[1].maxMessagesPerSecond: an integer from 1 to 1000"),
        ({"audienceFilter": "maybe"}, "sends[1].audienceFilter: one of off, webhook_filtered"),
        ({"eventFilter": {"mode": "include"}},
         "sends[1].eventFilter.eventType: Name the event type the filter includes or excludes."),
    ],
)  # fmt: skip
def test_a_wrong_send_is_named_by_its_place_and_nothing_is_stored(api, body, send, message):
    sends = [SEND | {"schedule": {"startOffsetMinutes": 0}}, SEND | send]

    response = api.post("campaigns", body(sends=sends))

    assert response.status_code == 400
    assert response.json() == error(400, message)
    assert not Campaign.objects.exists()
    assert not Send.objects.exists()


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("{{ lead.variables.nope }}",
         "no lead of the audience has the variable 'nope' (the audience's columns: coupon)"),
        ("{{ receiver.nope }}",
         "no lead of the audience has the variable 'nope' (the audience's columns: coupon)"),
        ("{{ channel.name }}",
         "channel is not available: a WhatsApp message goes to one lead (use receiver)"),
        ("{{ custom }}", "unknown variable 'custom': templates read lead, receiver, sender"),
    ],
)  # fmt: skip
def test_a_parameter_the_product_cannot_fill_is_a_400_naming_it(api, body, parameter, message):
    response = api.post("campaigns", body(sends=[SEND | {"parameters": ["a", parameter]}]))

    assert response.json() == error(400, f"sends[0].parameters[1]: {message}")
    assert not Campaign.objects.exists()


def test_an_update_is_checked_against_the_campaigns_segments_and_the_leads_given(
    api, body, organization
):
    api.post("campaigns", body(id="c1"))
    other = LeadFactory(audience__organization=organization, variables={"plan": "pro"})
    nope = {"sends": [SEND | {"parameters": ["a", "{{ receiver.plan }}"]}]}

    against_segment = api.patch("campaigns/c1", nope)
    against_leads = api.patch("campaigns/c1", nope | {"leadIds": [other.pk]})

    assert against_segment.json() == error(
        400,
        "sends[0].parameters[1]: no lead of the audience has the variable 'plan' "
        "(the audience's columns: coupon)",
    )
    assert against_leads.status_code == 200


def test_seed_003_receiver_and_sender_variables_render_in_the_preview(api, body, segment, sender):
    sender.display_phone_number = "+44 20 7946 0000"
    sender.save()
    sends = [SEND | {"parameters": ["{{ receiver.name }} at {{ sender.name }}", "{{ receiver.coupon }}"]}]  # fmt: skip
    campaign = api.post("campaigns", body(id="c1", sends=sends)).json()["campaign"]
    lead = segment.leads.order_by("pk").first()
    send_id = campaign["sends"][0]["id"]

    response = api.post(f"campaigns/c1/sends/{send_id}/preview", {"leadId": lead.pk})

    org_name = segment.organization.name
    assert response.json()["parameters"] == [f"Ann0 at {org_name}", "C0"]
    lead.variables = {"coupon": ""}
    lead.save()
    skipped = api.post(f"campaigns/c1/sends/{send_id}/preview", {"leadId": lead.pk}).json()
    assert skipped == {
        "parameters": None,
        "headerParameters": None,
        "buttonParameters": None,
        "body": None,
        "skipped": {
            "reason": "missing_parameter",
            "message": "Parameter {{2}} ({{ receiver.coupon }}) is empty for this lead",
        },
    }


def test_every_problem_of_a_body_is_reported_at_once(api, body):
    response = api.post("campaigns", body(senderId="999", sends=[{"template": "nope"}]))

    assert response.json()["message"] == (
        "senderId: no WhatsApp number of yours has id '999'; sends[0].template: no template 'nope'"
    )


def test_lead_ids_become_a_hidden_segment_of_the_campaign(api, body, segment):
    leads = list(segment.leads.order_by("pk"))
    ids = [str(leads[0].pk), leads[1].pk, str(leads[0].pk)]

    response = api.post("campaigns", body(segmentIds=None) | {"userIds": ids})

    assert response.status_code == 201
    assert response.json()["campaign"]["segmentIds"] == []
    [own] = Campaign.objects.get().audiences.all()
    assert own.hidden and own.size == 2


def test_a_campaigns_own_lead_list_goes_when_replaced_or_when_the_campaign_goes(api, body, segment):
    leads = list(segment.leads.order_by("pk"))
    created = api.post("campaigns", body(id="c1", segmentIds=None) | {"leadIds": [leads[0].pk]})
    assert created.status_code == 201

    assert api.patch("campaigns/c1", {"leadIds": [leads[1].pk]}).status_code == 200
    [own] = Audience.objects.filter(hidden=True)
    assert list(own.targets.values_list("lead_id", flat=True)) == [leads[1].pk]

    assert api.patch("campaigns/c1", {"segmentIds": [str(segment.pk)]}).status_code == 200
    assert not Audience.objects.filter(hidden=True).exists()

    api.patch("campaigns/c1", {"leadIds": [leads[0].pk]})
    assert api.call("delete", "campaigns/c1").status_code == 204
    assert not Audience.objects.filter(hidden=True).exists()
    assert segment.leads.count() == len(leads)  # targets go, the leads themselves stay


def test_leads_of_another_organization_are_unknown(api, body):
    foreign = LeadFactory()

    response = api.post("campaigns", body(segmentIds=None) | {"leadIds": [str(foreign.pk)]})

    assert response.json() == error(400, f"leadIds[0]: no lead '{foreign.pk}'")
    assert not Audience.objects.filter(hidden=True).exists()


def test_a_template_in_several_languages_needs_its_language(api, body, sale_template):
    MessageTemplateFactory(
        organization=api.organization, name="spring_sale", language="es_ES", body_text="{{1}}{{2}}"
    )

    response = api.post("campaigns", body(sends=[SEND]))
    assert response.json() == error(
        400, "sends[0].language: template 'spring_sale' exists in en_US, es_ES: name the language"
    )
    assert api.post("campaigns", body(sends=[SEND | {"language": "es_ES"}])).status_code == 201


# --- Update -------------------------------------------------------------------------------------


def test_updating_a_draft_replaces_the_given_fields_and_sends(api, body, receipt_template):
    api.post("campaigns", body(id="c1"))

    response = api.patch(
        "campaigns/c1",
        {"name": "Renamed", "sends": [{"template": "receipt", "parameters": ["{{ lead.external_id }}"]}]},
    )  # fmt: skip

    campaign = response.json()["campaign"]
    assert response.status_code == 200
    assert campaign["name"] == "Renamed"
    assert campaign["productPolicyConfirmed"] is True
    assert [(s["template"], s["category"]) for s in campaign["sends"]] == [("receipt", "UTILITY")]
    assert campaign["sends"][0]["schedule"] == {"startOffsetMinutes": 0}
    assert Send.objects.count() == 1


def test_the_product_policy_is_the_marketers_choice_or_a_400(api, body):
    created = api.post("campaigns", body(id="c1")).json()["campaign"]
    chosen = api.patch("campaigns/c1", {"productPolicy": "STRICT"}).json()["campaign"]
    refused = api.patch("campaigns/c1", {"productPolicy": "strict"})

    assert created["productPolicy"] == "CLOUD_API_FALLBACK"
    assert chosen["productPolicy"] == "STRICT"
    assert refused.json() == error(400, "productPolicy: one of CLOUD_API_FALLBACK, STRICT")
    assert Campaign.objects.get().product_policy == "STRICT"


def test_a_bad_update_changes_nothing(api, body):
    api.post("campaigns", body(id="c1"))

    response = api.patch("campaigns/c1", {"name": "Renamed", "sends": [{"template": "nope"}]})

    assert response.json() == error(400, "sends[0].template: no template 'nope'")
    assert Campaign.objects.get().name == "Spring sale"


def test_only_a_draft_can_be_updated(api, body):
    api.post("campaigns", body(id="c1"))
    Campaign.objects.update(status=Campaign.Status.RUNNING)

    response = api.patch("campaigns/c1", {"name": "Renamed"})

    assert response.status_code == 409
    assert response.json() == error(409, "The campaign is in_progress: only a draft can be updated")


# --- Start, stop, delete ------------------------------------------------------------------------


def test_starting_later_schedules_every_send_relative_to_the_start(api, body):
    sends = [
        SEND,
        SEND | {"schedule": {"startOffsetMinutes": 90}},
    ]
    api.post("campaigns", body(id="c1", sends=sends))

    response = api.post(
        "campaigns/c1/start",
        {"scheduledFor": "2031-05-01T10:00:00+02:00", "stopAt": "2031-05-02T08:00:00Z"},
    )

    campaign = response.json()["campaign"]
    assert response.status_code == 200
    assert campaign["status"] == "scheduled"
    assert campaign["stopAt"] == "2031-05-02T08:00:00Z"
    assert [s["scheduledFor"] for s in campaign["sends"]] == [
        "2031-05-01T08:00:00Z",
        "2031-05-01T09:30:00Z",
    ]
    assert campaign["scheduledFor"] == "2031-05-01T08:00:00Z"


def test_starting_now_fires_in_a_moment(api, body):
    api.post("campaigns", body(id="c1", sends=[SEND]))

    campaign = api.post("campaigns/c1/start").json()["campaign"]

    fires = dt.datetime.fromisoformat(campaign["sends"][0]["scheduledFor"])
    assert timezone.now() < fires < timezone.now() + dt.timedelta(seconds=5)


def test_a_start_failing_the_gates_lists_every_problem_and_changes_nothing(
    api, body, sale_template, sender
):
    sale_template.status = "PENDING"
    sale_template.save()
    sender.mm_lite_terms_accepted = False
    sender.save()
    api.post("campaigns", body(id="c1", productPolicyConfirmed=False, sends=[SEND]))

    response = api.post("campaigns/c1/start", {"stopAt": "2031-05-02T08:00:00Z"})

    assert response.status_code == 409
    assert response.json() == error(
        409,
        "Send 1: template 'spring_sale' is PENDING, not APPROVED; "
        f"The WhatsApp number {sender.display_phone_number} has not accepted the MM Lite terms "
        "(required for MARKETING sends); Confirm that recipients opted in (product policy) "
        "before scheduling MARKETING sends",
    )
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.stop_at is None
    assert Send.objects.get().start_offset_minutes == 0
    assert api.get("campaigns/c1").json()["campaign"]["sends"][0]["scheduledFor"] is None


def test_a_start_in_the_past_is_refused_by_the_gate(api, body):
    api.post("campaigns", body(id="c1", sends=[SEND]))

    response = api.post("campaigns/c1/start", {"scheduledFor": "2020-01-01T00:00:00Z"})

    assert response.status_code == 409
    assert response.json()["message"].startswith("Send 1 is in the past")


def test_a_stop_before_the_start_is_refused(api, body):
    api.post("campaigns", body(id="c1", sends=[SEND]))

    response = api.post(
        "campaigns/c1/start",
        {"scheduledFor": "2031-05-01T10:00:00Z", "stopAt": "2031-05-01T09:00:00Z"},
    )

    assert response.json() == error(409, "The stop time must be after the start")


def test_a_started_campaign_cannot_start_again(api, body):
    api.post("campaigns", body(id="c1"))
    api.post("campaigns/c1/start")

    response = api.post("campaigns/c1/start")

    assert response.json() == error(
        409, "Cannot start a scheduled campaign: only a draft can be started"
    )


def test_stopping_a_scheduled_campaign_stops_its_sends(api, body):
    api.post("campaigns", body(id="c1"))
    api.post("campaigns/c1/start")

    campaign = api.post("campaigns/c1/stop").json()["campaign"]

    assert campaign["status"] == "stopped"
    assert campaign["sends"][0]["status"] == "stopped"
    assert campaign["stats"]["progress"] == 1.0
    assert api.post("campaigns/c1/stop").json() == error(409, "Cannot stop a stopped campaign")


@pytest.mark.parametrize(
    ("status", "deletable"),
    [
        (Campaign.Status.DRAFT, True),
        (Campaign.Status.COMPLETED, True),
        (Campaign.Status.CANCELLED, True),
        (Campaign.Status.SCHEDULED, False),
        (Campaign.Status.RUNNING, False),
        (Campaign.Status.PAUSED, False),
    ],
)
def test_only_drafts_and_finished_campaigns_can_be_deleted(api, status, deletable):
    campaign = CampaignFactory(organization=api.organization, status=status)
    SendFactory(campaign=campaign)

    response = api.delete(f"campaigns/{campaign.api_id}")

    if deletable:
        assert response.status_code == 204
        assert not Campaign.objects.exists()
    else:
        assert response.status_code == 409
        assert response.json()["message"].startswith(
            f"Cannot delete a {campaign.get_status_display().lower()} campaign: stop it first"
        )
        assert Campaign.objects.exists()


# --- Query --------------------------------------------------------------------------------------


def test_query_by_status_sorted_pages_through_every_match_once(api, sender):
    statuses = [Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.DRAFT]
    for n in range(9):
        CampaignFactory(
            organization=api.organization,
            whatsapp_number=sender,
            status=statuses[n % 3],
            name=f"c{n}",
        )
    CampaignFactory(status=Campaign.Status.SCHEDULED)  # another organization's
    query = {
        "filter": {"status": {"$in": ["scheduled", "in_progress"]}},
        "sort": [{"field": "name", "direction": -1}],
        "limit": 4,
    }

    first = api.post("campaigns/query", query).json()
    second = api.post("campaigns/query", query | {"next": first["next"]}).json()

    names = [c["name"] for c in first["campaigns"] + second["campaigns"]]
    assert names == ["c7", "c6", "c4", "c3", "c1", "c0"]
    assert [c["status"] for c in first["campaigns"]] == [
        "in_progress", "scheduled", "in_progress", "scheduled",
    ]  # fmt: skip
    assert second["next"] is None


def test_query_filters_on_segments_sender_id_and_dates(api, sender, segment):
    tagged = CampaignFactory(organization=api.organization, whatsapp_number=sender)
    tagged.audiences.add(segment)
    CampaignFactory(organization=api.organization)

    def ids(filter_):
        response = api.post("campaigns/query", {"filter": filter_})
        assert response.status_code == 200, response.json()
        return [c["id"] for c in response.json()["campaigns"]]

    assert ids({"segments": {"$in": [str(segment.pk)]}}) == [tagged.api_id]
    assert ids({"sender_id": sender.phone_number_id}) == [tagged.api_id]
    assert ids({"id": {"$in": [tagged.api_id, "nope"]}}) == [tagged.api_id]
    assert len(ids({"created_at": {"$gte": "2020-01-01T00:00:00Z"}})) == 2
    assert ids({"updatedAt": {"$lt": "2020-01-01T00:00:00Z"}}) == []


def test_a_wrong_query_names_its_place(api):
    response = api.post("campaigns/query", {"filter": {"status": "running"}})

    assert response.status_code == 400
    assert response.json()["message"].startswith("filter.status: unknown value 'running'")
    assert api.post("campaigns/query", {"limit": 101}).json() == error(
        400, "limit: expected an integer from 1 to 100"
    )


# --- Preview ------------------------------------------------------------------------------------


def test_preview_renders_a_send_for_one_lead(api, body, segment):
    sends = [SEND | {"parameters": ["{{ lead.first_name|upper }}", '{{ lead.variables.coupon|default:"WELCOME" }}']}]  # fmt: skip
    campaign = api.post("campaigns", body(id="c1", sends=sends)).json()["campaign"]
    lead = segment.leads.order_by("pk").first()
    send_id = campaign["sends"][0]["id"]

    response = api.post(f"campaigns/c1/sends/{send_id}/preview", {"leadId": str(lead.pk)})

    assert response.json() == {
        "parameters": ["ANN0", "C0"],
        "headerParameters": [],
        "buttonParameters": [],
        "body": "Hi ANN0, C0 off!",
        "skipped": None,
    }
    lead.variables = {}
    lead.save()
    preview = api.post(f"campaigns/c1/sends/{send_id}/preview", {"leadId": lead.pk}).json()
    assert preview["parameters"] == ["ANN0", "WELCOME"]


def test_preview_of_another_organizations_lead_is_not_found(api, body):
    campaign = api.post("campaigns", body(id="c1")).json()["campaign"]

    response = api.post(
        f"campaigns/c1/sends/{campaign['sends'][0]['id']}/preview", {"leadId": LeadFactory().pk}
    )

    assert response.status_code == 404


# --- Scoping ------------------------------------------------------------------------------------


def test_another_organizations_campaign_is_not_found_on_every_endpoint(api):
    foreign = CampaignFactory(status=Campaign.Status.DRAFT)
    send = SendFactory(campaign=foreign)
    lead = LeadFactory(audience=AudienceFactory(organization=api.organization))
    path = f"campaigns/{foreign.api_id}"
    calls = [
        api.get(path),
        api.patch(path, {"name": "mine"}),
        api.delete(path),
        api.post(f"{path}/start"),
        api.post(f"{path}/stop"),
        api.post(f"{path}/sends/{send.pk}/preview", {"leadId": lead.pk}),
    ]

    assert [response.status_code for response in calls] == [404] * 6
    assert calls[0].json() == error(404, f"No campaign with id {foreign.api_id!r}")
    foreign.refresh_from_db()
    assert (foreign.name, foreign.status) != ("mine", Campaign.Status.CANCELLED)
    assert api.post("campaigns/query", {"filter": {"id": foreign.api_id}}).json() == {
        "campaigns": [],
        "next": None,
        "prev": None,
    }


def test_the_same_id_in_two_organizations_names_two_campaigns(api, body):
    CampaignFactory(api_id="shared")

    assert api.post("campaigns", body(id="shared")).status_code == 201
    assert api.get("campaigns/shared").json()["campaign"]["name"] == "Spring sale"


def test_the_api_needs_a_key(client):
    response = client.get("/api/v1/campaigns/anything")

    assert response.status_code == 401
    assert response.json() == {"statusCode": 401, "message": "Unauthorized"}


@pytest.mark.parametrize("odd_id", ["²", "١٢", "9" * 30, "-1"])
def test_ids_that_are_not_ascii_digits_are_simply_not_found(api, body, odd_id):
    assert api.get(f"campaigns/{odd_id}").status_code == 404
    assert api.get(f"segments/{odd_id}").status_code == 404
    assert api.get(f"webhook-endpoints/{odd_id}").status_code == 404
    response = api.post("campaigns", body(segmentIds=[odd_id]))
    assert response.status_code == 400
    assert "segmentIds[0]" in response.json()["message"]


def test_a_send_faster_than_its_numbers_throughput_says_so(api, body, sender):
    send = body()["sends"][0] | {"maxMessagesPerSecond": 400}

    campaign = api.post("campaigns", body(id="fast", sends=[send])).json()["campaign"]

    assert sender.throughput_mps == 80
    (warning,) = campaign["warnings"]
    assert "throughput is 80 messages/s" in warning and "not the 400/s" in warning
    assert campaign["sends"][0]["rate"] == {
        "configured": 400,
        "effective": 80.0,
        "reason": warning,
    }
