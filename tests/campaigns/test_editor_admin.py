"""The campaign editor in the admin, exercised over HTTP as a marketer would use it."""

import datetime as dt
import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from audiences.models import Audience
from campaigns.models import AudienceFilterEvent, Campaign, Send, SendRecipient
from messaging.models import WhatsAppNumber
from tests.campaigns.editor import (
    ADD_URL,
    change_url,
    new_campaign_data,
    ready_campaign,
    refreshed,
    send_row,
)
from tests.factories import (
    MessageTemplateFactory,
    OrganizationFactory,
    SendFactory,
    UserFactory,
)
from tests.setter.admin_forms import change_form_post_data

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:campaigns_campaign_changelist")


def transition_url(campaign, action):
    return reverse("admin:campaigns_campaign_transition", args=[campaign.pk, action])


def shown_messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


@pytest.fixture
def org():
    return OrganizationFactory(name="Org A")


@pytest.fixture
def marketer(client, org):
    client.force_login(UserFactory(organization=org))
    return client


# --- Adding and changing ----------------------------------------------------------------------


def test_adding_a_campaign_with_sends_stores_each_sends_utc_instant(marketer, org):
    template = MessageTemplateFactory(organization=org)
    rows = [
        send_row(0, template, local_date="2030-07-01", local_time="09:00",
                 time_zone="America/New_York"),
        send_row(1, template, local_date="2030-07-02", local_time="10:00",
                 time_zone="Europe/London"),
        send_row(2, template, local_date="2030-07-03", local_time="10:00",
                 time_zone="Asia/Kolkata"),
    ]  # fmt: skip

    response = marketer.post(ADD_URL, new_campaign_data(org, rows), follow=True)

    assert response.status_code == 200
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.organization == org
    assert campaign.status == Campaign.Status.DRAFT
    assert (campaign.product_policy_confirmed, campaign.product_policy) == (True, "STRICT")
    assert list(campaign.sends.order_by("position").values_list("scheduled_for", flat=True)) == [
        dt.datetime(2030, 7, 1, 13, 0, tzinfo=dt.UTC),
        dt.datetime(2030, 7, 2, 9, 0, tzinfo=dt.UTC),
        dt.datetime(2030, 7, 3, 4, 30, tzinfo=dt.UTC),
    ]
    assert not [m for m in shown_messages(response) if m[0] == "warning"]


def test_an_ambiguous_local_time_is_saved_as_its_first_occurrence_with_a_warning(marketer, org):
    template = MessageTemplateFactory(organization=org)
    rows = [send_row(0, template, local_date="2030-11-03", local_time="01:30",
                     time_zone="America/New_York", name="Reminder")]  # fmt: skip

    response = marketer.post(ADD_URL, new_campaign_data(org, rows), follow=True)

    send = Send.objects.get(campaign__name="Spring sale")
    assert send.scheduled_for == dt.datetime(2030, 11, 3, 5, 30, tzinfo=dt.UTC)
    assert (
        "warning",
        "Reminder: 01:30 on 2030-11-03 happens twice in America/New_York; "
        "using the first occurrence (EDT, UTC\u221204:00)",
    ) in shown_messages(response)


def test_a_local_time_in_the_gap_is_a_form_error_and_nothing_is_saved(marketer, org):
    template = MessageTemplateFactory(organization=org)
    rows = [send_row(0, template, local_date="2030-03-10", local_time="02:30",
                     time_zone="America/New_York")]  # fmt: skip

    response = marketer.post(ADD_URL, new_campaign_data(org, rows))

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors
    assert errors[0]["local_time"] == [
        "02:30 on 2030-03-10 does not exist in America/New_York: clocks jump from 02:00 to 03:00"
    ]
    assert "clocks jump from 02:00 to 03:00" in response.content.decode()
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"parameter_mapping": '["first_name"]'}, "parameter_mapping"),
        ({"parameter_mapping": "not json"}, "parameter_mapping"),
        ({"event_filter_mode": "include"}, "event_filter_type"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"max_messages_per_second": "0"}, "max_messages_per_second"),
    ],
)
def test_an_invalid_send_row_is_a_form_error(marketer, org, fields, field):
    template = MessageTemplateFactory(organization=org)

    response = marketer.post(ADD_URL, new_campaign_data(org, [send_row(0, template, **fields)]))

    assert response.status_code == 200
    assert field in response.context["inline_admin_formsets"][0].formset.errors[0]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (["first_name", "variables.nope"],
         "Parameter {{2}}: no lead of the audience has the variable 'nope' "
         "(the audience's columns: coupon)"),
        (["first_name", "{{ channel.id }}"],
         "Parameter {{2}}: channel is not available: a WhatsApp message goes to one lead "
         "(use receiver)"),
    ],
)  # fmt: skip
def test_a_mapping_the_audience_cannot_fill_is_refused_at_save(marketer, org, mapping, message):
    """The audiences chosen on the same page, not yet saved, are the ones checked."""
    template = MessageTemplateFactory(organization=org)
    row = send_row(0, template, parameter_mapping=json.dumps(mapping))

    response = marketer.post(ADD_URL, new_campaign_data(org, [row]))

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors
    assert errors[0]["parameter_mapping"] == [message]
    assert not Campaign.objects.exists()


def test_changing_a_drafts_send_recomputes_its_instant(marketer, org):
    campaign = ready_campaign(sends=1, organization=org)
    page = marketer.get(change_url(campaign))
    data = change_form_post_data(
        page,
        **{"sends-0-local_date": "2030-06-01", "sends-0-local_time": "02:30",
           "sends-0-time_zone": "Europe/London"},
    )  # fmt: skip

    response = marketer.post(change_url(campaign), data)

    assert response.status_code == 302
    assert campaign.sends.get().scheduled_for == dt.datetime(2030, 6, 1, 1, 30, tzinfo=dt.UTC)


def test_the_change_form_shows_each_sends_utc_instant(marketer, org):
    campaign = ready_campaign(sends=1, organization=org)
    Send.objects.filter(campaign=campaign).update(
        scheduled_for=dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    )

    response = marketer.get(change_url(campaign))

    assert "2030-01-02 03:04 UTC" in response.content.decode()


def test_a_campaign_that_left_draft_is_read_only_in_the_editor(marketer, org):
    campaign = ready_campaign(sends=1, organization=org, name="Locked")
    draft_page = marketer.get(change_url(campaign))
    data = change_form_post_data(draft_page, name="Renamed", **{"sends-0-local_time": "23:00"})
    data.update(send_row(1, campaign.sends.get().template))
    data["sends-TOTAL_FORMS"] = "2"
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    send_before = Send.objects.filter(campaign=campaign).values()[0]

    page = marketer.get(change_url(campaign))
    response = marketer.post(change_url(campaign), data)

    assert page.status_code == 200
    assert page.context["adminform"].form.fields == {}
    assert "its settings and sends are locked" in page.content.decode()
    formset = page.context["inline_admin_formsets"][0]
    assert not formset.has_add_permission and not formset.has_change_permission
    assert response.status_code == 403
    assert refreshed(campaign).name == "Locked"
    assert list(Send.objects.filter(campaign=campaign).values()) == [send_before]


def test_send_forms_offer_only_the_campaigns_organizations_templates(marketer, org):
    campaign = ready_campaign(sends=1, organization=org)
    own = campaign.sends.get().template
    theirs = MessageTemplateFactory(organization=OrganizationFactory(), name="theirs")

    page = marketer.get(change_url(campaign))

    offered = set(
        page.context["inline_admin_formsets"][0].formset.empty_form.fields["template"].queryset
    )
    assert own in offered and theirs not in offered
    assert "theirs" not in page.content.decode()


def test_a_superuser_editing_a_campaign_is_offered_only_its_organizations_templates(client, org):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    campaign = ready_campaign(sends=1, organization=org)
    theirs = MessageTemplateFactory(organization=OrganizationFactory())

    page = client.get(change_url(campaign))
    data = change_form_post_data(page, **{"sends-0-template": str(theirs.pk)})
    response = client.post(change_url(campaign), data)

    offered = set(
        page.context["inline_admin_formsets"][0].formset.forms[0].fields["template"].queryset
    )
    assert theirs not in offered
    assert response.status_code == 200
    assert "template" in response.context["inline_admin_formsets"][0].formset.errors[0]
    assert campaign.sends.get().template != theirs


def test_a_send_of_another_organization_cannot_be_edited_through_a_forged_row(marketer, org):
    campaign = ready_campaign(sends=1, organization=org)
    foreign = SendFactory(name="Their send")
    page = marketer.get(change_url(campaign))
    data = change_form_post_data(
        page, **{"sends-0-id": str(foreign.pk), "sends-0-name": "Hijacked"}
    )

    marketer.post(change_url(campaign), data)

    assert Send.objects.get(pk=foreign.pk).name == "Their send"
    assert Send.objects.get(pk=foreign.pk).campaign_id != campaign.pk


# --- Lifecycle buttons on the change form -----------------------------------------------------


def test_the_change_form_offers_the_actions_the_status_allows(marketer, org):
    campaign = ready_campaign(organization=org)

    draft = marketer.get(change_url(campaign)).content.decode()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    scheduled = marketer.get(change_url(campaign)).content.decode()

    assert transition_url(campaign, "schedule") in draft
    assert transition_url(campaign, "cancel") in draft
    assert transition_url(campaign, "pause") not in draft
    assert transition_url(campaign, "pause") in scheduled
    assert transition_url(campaign, "schedule") not in scheduled


def test_schedule_pause_resume_and_cancel_buttons(marketer, org):
    campaign = ready_campaign(organization=org, name="Drip")
    steps = [
        ("schedule", Campaign.Status.SCHEDULED, "Drip: scheduled."),
        ("pause", Campaign.Status.PAUSED, "Drip: paused."),
        ("resume", Campaign.Status.SCHEDULED, "Drip: resumed."),
        ("cancel", Campaign.Status.CANCELLED, "Drip: cancelled."),
    ]
    for action, status, message in steps:
        response = marketer.post(transition_url(campaign, action), follow=True)

        assert response.redirect_chain == [(change_url(campaign), 302)]
        assert ("success", message) in shown_messages(response)
        assert refreshed(campaign).status == status
    assert set(campaign.sends.values_list("status", flat=True)) == {Send.Status.CANCELLED}


def test_a_refused_schedule_shows_one_error_per_failed_gate(marketer, org):
    campaign = ready_campaign(organization=org, name="Drip", product_policy_confirmed=False)
    WhatsAppNumber.objects.filter(pk=campaign.whatsapp_number_id).update(
        mm_lite_terms_accepted=False, display_phone_number="+1 555 0100"
    )

    response = marketer.post(transition_url(campaign, "schedule"), follow=True)

    assert shown_messages(response) == [
        ("error", "Drip: The WhatsApp number +1 555 0100 has not accepted the MM Lite terms "
                  "(required for MARKETING sends)"),
        ("error", "Drip: Confirm that recipients opted in (product policy) before scheduling "
                  "MARKETING sends"),
    ]  # fmt: skip
    assert refreshed(campaign).status == Campaign.Status.DRAFT


def test_an_illegal_button_press_shows_the_refusal(marketer, org):
    campaign = ready_campaign(organization=org, name="Drip")

    response = marketer.post(transition_url(campaign, "pause"), follow=True)

    assert shown_messages(response) == [("error", "Drip: Cannot pause a draft campaign")]
    assert refreshed(campaign).status == Campaign.Status.DRAFT


def test_transitions_need_a_post_a_known_action_and_the_staff_members_campaign(marketer, org):
    own = ready_campaign(organization=org)
    theirs = ready_campaign()

    assert marketer.get(transition_url(own, "schedule")).status_code == 405
    assert marketer.post(transition_url(own, "start_running")).status_code == 404
    assert marketer.post(transition_url(theirs, "schedule")).status_code == 404
    assert marketer.post(transition_url(theirs, "cancel")).status_code == 404
    assert refreshed(own).status == Campaign.Status.DRAFT
    assert refreshed(theirs).status == Campaign.Status.DRAFT


# --- Lifecycle actions on the list -------------------------------------------------------------


def run_list_action(client, action, campaigns):
    data = {"action": action, "_selected_action": [str(c.pk) for c in campaigns]}
    return client.post(LIST_URL, data, follow=True)


def test_list_actions_schedule_the_ready_and_report_the_others(marketer, org):
    ready = ready_campaign(organization=org, name="Ready")
    empty = ready_campaign(organization=org, name="Empty", sends=0)

    response = run_list_action(marketer, "schedule", [ready, empty])

    assert refreshed(ready).status == Campaign.Status.SCHEDULED
    assert refreshed(empty).status == Campaign.Status.DRAFT
    assert ("success", "Ready: scheduled.") in shown_messages(response)
    assert ("error", "Empty: The campaign has no sends") in shown_messages(response)


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        ("pause", Campaign.Status.SCHEDULED, Campaign.Status.PAUSED),
        ("pause", Campaign.Status.RUNNING, Campaign.Status.PAUSED),
        ("resume", Campaign.Status.PAUSED, Campaign.Status.SCHEDULED),
        ("cancel", Campaign.Status.PAUSED, Campaign.Status.CANCELLED),
        ("cancel", Campaign.Status.DRAFT, Campaign.Status.CANCELLED),
    ],
)
def test_list_actions_move_campaigns(marketer, org, action, before, after):
    campaign = ready_campaign(organization=org, status=before)

    run_list_action(marketer, action, [campaign])

    assert refreshed(campaign).status == after


def test_list_actions_never_reach_another_organizations_campaign(marketer, org):
    theirs = ready_campaign(status=Campaign.Status.SCHEDULED)

    run_list_action(marketer, "cancel", [theirs])

    assert refreshed(theirs).status == Campaign.Status.SCHEDULED


def test_the_list_shows_status_number_and_next_send(marketer, org):
    campaign = ready_campaign(organization=org, name="Drip")
    first, second = campaign.sends.order_by("position")
    Send.objects.filter(pk=first.pk).update(
        status=Send.Status.COMPLETED, scheduled_for=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    )
    Send.objects.filter(pk=second.pk).update(
        scheduled_for=dt.datetime(2030, 1, 2, 8, 15, tzinfo=dt.UTC)
    )

    page = marketer.get(LIST_URL).content.decode()

    assert "Drip" in page
    assert campaign.whatsapp_number.display_phone_number in page
    assert "2030-01-02 08:15 UTC" in page
    assert "2030-01-01 00:00 UTC" not in page


# --- Recipient queue and filter events -----------------------------------------------------------


def test_recipients_and_filter_events_are_read_only_and_scoped(marketer, org):
    own_send = ready_campaign(organization=org, sends=1).sends.get()
    other_send = ready_campaign(sends=1).sends.get()
    for send, phone in [(own_send, "+447700900111"), (other_send, "+447700900222")]:
        SendRecipient.objects.create(send=send, phone_e164=phone, status="delivered")
        AudienceFilterEvent.objects.create(
            send=send, organization=send.campaign.organization, mode="include",
            payload_hash=phone, lead_count=7,
        )  # fmt: skip

    recipients = marketer.get(reverse("admin:campaigns_sendrecipient_changelist"))
    delivered = marketer.get(
        reverse("admin:campaigns_sendrecipient_changelist"), {"status__exact": "delivered"}
    )
    failed = marketer.get(
        reverse("admin:campaigns_sendrecipient_changelist"), {"status__exact": "failed"}
    )
    events = marketer.get(
        reverse("admin:campaigns_audiencefilterevent_changelist"), {"send__id__exact": own_send.pk}
    )

    assert [r.phone_e164 for r in recipients.context["cl"].result_list] == ["+447700900111"]
    assert len(delivered.context["cl"].result_list) == 1
    assert len(failed.context["cl"].result_list) == 0
    assert [e.send for e in events.context["cl"].result_list] == [own_send]
    recipient = SendRecipient.objects.get(send=own_send)
    add_recipient = marketer.get(reverse("admin:campaigns_sendrecipient_add"))
    change = marketer.post(
        reverse("admin:campaigns_sendrecipient_change", args=[recipient.pk]),
        {"status": "failed", "phone_e164": "+1"},
    )
    assert add_recipient.status_code == 403
    assert change.status_code == 403
    assert SendRecipient.objects.get(pk=recipient.pk).status == "delivered"
    assert Audience.objects.count() == 2


def test_a_send_at_each_recipients_local_time_is_a_tick_in_the_editor(marketer, org):
    template = MessageTemplateFactory(organization=org)
    rows = [
        send_row(0, template, local_date="2030-07-01", local_time="10:00",
                 time_zone="Europe/London", recipient_local_time="on"),
        send_row(1, template, local_date="2030-07-02", local_time="10:00",
                 time_zone="Europe/London"),
    ]  # fmt: skip

    response = marketer.post(ADD_URL, new_campaign_data(org, rows), follow=True)

    assert response.status_code == 200
    sends = Campaign.objects.get(name="Spring sale").sends.order_by("position")
    assert list(sends.values_list("recipient_local_time", flat=True)) == [True, False]
    page = marketer.get(f"/admin/campaigns/campaign/{sends[0].campaign_id}/change/")
    assert page.content.decode().count("(its first wave, once the campaign is scheduled)") == 1
