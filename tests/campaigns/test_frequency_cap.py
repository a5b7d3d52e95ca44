"""The organization's frequency cap (issue 16.3): a phone gets at most N messages in any D days
across all the organization's campaigns. Materialization writes the capped phones skipped with
reason frequency_cap, the dry run counts them apart, and the dispatcher re-checks the cap on
the rows it claims."""

import datetime as dt
import random
from collections import Counter

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import dispatcher
from campaigns import sends as send_lifecycle
from campaigns.materializer import materialize_send, preview_send
from campaigns.models import Campaign, Send, SendRecipient
from messaging.models import Category
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadFactory,
    OrganizationFactory,
    SendFactory,
    SendRecipientFactory,
)

Status = SendRecipient.Status
COUNTED = [Status.SENT, Status.DELIVERED, Status.READ, Status.UNKNOWN]
NOT_COUNTED = [Status.FAILED, Status.SKIPPED, Status.QUEUED]
PHONES = [f"+4420794601{n:02d}" for n in range(60)]


def campaign_to(organization, phones, **campaign_fields):
    campaign = CampaignFactory(
        organization=organization, status=Campaign.Status.SCHEDULED, **campaign_fields
    )
    audience = AudienceFactory(organization=organization)
    campaign.audiences.add(audience)
    for phone in phones:
        LeadFactory(
            audience=audience, phone_e164=phone, first_name="Ann", variables={"coupon": "C1"}
        )
    return campaign


def history(organization, rng, fire_at, *, category=Category.MARKETING):
    """Past sends of `organization` to random phones, with statuses and times in and out of
    the cap's window. Returns (phone, category, status, sent_at) per recipient written."""
    written = []
    for _ in range(4):
        send = SendFactory(
            campaign=CampaignFactory(organization=organization),
            category=category,
            scheduled_for=fire_at - dt.timedelta(days=rng.randint(0, 12)),
        )
        for phone in rng.sample(PHONES, 30):
            status = rng.choice(COUNTED + NOT_COUNTED)
            sent_at = fire_at - dt.timedelta(hours=rng.randint(1, 12 * 24))
            SendRecipientFactory(send=send, phone_e164=phone, status=status, sent_at=sent_at)
            written.append((phone, category, status, sent_at))
    return written


def capped(written, *, messages, days, categories, fire_at) -> set[str]:
    counts: dict[str, int] = {}
    for phone, category, status, sent_at in written:
        in_window = sent_at > fire_at - dt.timedelta(days=days)
        if category in categories and status in COUNTED and in_window:
            counts[phone] = counts.get(phone, 0) + 1
    return {phone for phone, count in counts.items() if count >= messages}


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "category,cap_utility",
    [(Category.MARKETING, False), (Category.UTILITY, False), (Category.UTILITY, True)],
)
def test_materialization_skips_exactly_the_phones_at_the_cap(seed, category, cap_utility):
    rng = random.Random(seed)
    organization = OrganizationFactory(
        frequency_cap_messages=2, frequency_cap_days=7, frequency_cap_utility=cap_utility
    )
    fire_at = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=30)
    written = history(organization, rng, fire_at) + history(
        organization, rng, fire_at, category=Category.UTILITY
    )
    # Another organization's messages to the same phones never count.
    elsewhere = OrganizationFactory(frequency_cap_messages=1)
    history(elsewhere, rng, fire_at)
    campaign = campaign_to(organization, PHONES)
    send = SendFactory(campaign=campaign, category=category, scheduled_for=fire_at)

    capped_categories = {Category.MARKETING}
    if cap_utility:
        capped_categories.add(Category.UTILITY)
    expected = set()
    if category in capped_categories:
        expected = capped(
            written, messages=2, days=7, categories=capped_categories, fire_at=fire_at
        )
    preview = preview_send(send, sample_size=len(PHONES))
    result = materialize_send(send.pk)

    rows = SendRecipient.objects.filter(send=send)
    held = set(
        rows.filter(
            status=Status.SKIPPED, skip_reason=SendRecipient.SkipReason.FREQUENCY_CAP
        ).values_list("phone_e164", flat=True)
    )
    queued = set(rows.filter(status=Status.QUEUED).values_list("phone_e164", flat=True))
    if category in capped_categories:
        assert expected, "the history puts someone at the cap"
    assert held == expected
    assert queued == set(PHONES) - expected
    assert result.recipient_count == len(PHONES)
    assert preview.held_by_cap == len(expected)
    assert preview.recipient_count == len(PHONES) - len(expected)
    assert not {message.phone_e164 for message in preview.sample} & expected


@pytest.mark.django_db
def test_no_cap_by_default():
    organization = OrganizationFactory()
    fire_at = timezone.now() + dt.timedelta(seconds=30)
    earlier = SendFactory(campaign=CampaignFactory(organization=organization))
    for phone in PHONES[:5]:
        for _ in range(3):
            SendRecipientFactory(send=SendFactory(campaign=earlier.campaign), phone_e164=phone)
    SendRecipient.objects.update(status=Status.READ, sent_at=fire_at - dt.timedelta(hours=1))
    send = SendFactory(campaign=campaign_to(organization, PHONES[:5]), scheduled_for=fire_at)

    materialize_send(send.pk)

    assert set(send.recipients.values_list("status", flat=True)) == {Status.QUEUED}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_engine")
def test_a_cap_of_one_skips_the_second_campaigns_recipients_that_the_first_reached(
    sandbox, number, marketing_template
):
    organization = number.organization
    organization.frequency_cap_messages, organization.frequency_cap_days = 1, 7
    organization.save()

    def dispatched(phones):
        campaign = campaign_to(organization, phones, whatsapp_number=number)
        send = SendFactory(
            campaign=campaign,
            template=marketing_template,
            parameter_mapping=["first_name", "variables.coupon"],
            max_messages_per_second=1000,
            scheduled_for=timezone.now() + dt.timedelta(seconds=30),
        )
        materialize_send(send.pk)
        Send.objects.filter(pk=send.pk).update(scheduled_for=timezone.now())
        assert send_lifecycle.start_due_sends() == [send.pk]
        assert dispatcher.dispatch_send(send.pk) is False
        return send

    first = dispatched(PHONES[:30])
    second = dispatched(PHONES[20:50])

    def phones(send, **filters):
        return set(send.recipients.filter(**filters).values_list("phone_e164", flat=True))

    assert phones(first, status=Status.SENT) == set(PHONES[:30])
    assert phones(second, status=Status.SENT) == set(PHONES[30:50])
    assert phones(second, skip_reason=SendRecipient.SkipReason.FREQUENCY_CAP) == set(PHONES[20:30])
    per_phone = Counter("+" + record["to"] for record in sandbox.requests(limit=1000)["requests"])
    assert per_phone == dict.fromkeys(PHONES[:50], 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_engine")
def test_the_dispatcher_re_checks_the_cap_on_what_it_claims(sandbox, number, marketing_template):
    """Materialized before another campaign reached some of its phones: those are skipped at
    dispatch, the others sent."""
    organization = number.organization
    organization.frequency_cap_messages = 1
    organization.save()
    campaign = campaign_to(organization, PHONES[:20], whatsapp_number=number)
    send = SendFactory(
        campaign=campaign,
        template=marketing_template,
        parameter_mapping=["first_name", "variables.coupon"],
        max_messages_per_second=1000,
        scheduled_for=timezone.now() + dt.timedelta(seconds=30),
    )
    materialize_send(send.pk)
    other = SendFactory(campaign=CampaignFactory(organization=organization))
    for phone in PHONES[:7]:
        SendRecipientFactory(send=other, phone_e164=phone, status=Status.DELIVERED)
    SendRecipient.objects.filter(send=other).update(sent_at=timezone.now())
    Send.objects.filter(pk=send.pk).update(scheduled_for=timezone.now())
    assert send_lifecycle.start_due_sends() == [send.pk]

    assert dispatcher.dispatch_send(send.pk) is False

    rows = send.recipients
    assert set(
        rows.filter(skip_reason=SendRecipient.SkipReason.FREQUENCY_CAP).values_list(
            "phone_e164", flat=True
        )
    ) == set(PHONES[:7])
    assert set(rows.filter(status=Status.SENT).values_list("phone_e164", flat=True)) == set(
        PHONES[7:20]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields,error_field",
    [
        ({"frequency_cap_messages": "0"}, "frequency_cap_messages"),
        ({"frequency_cap_messages": "-1"}, "frequency_cap_messages"),
        ({"frequency_cap_messages": "2", "frequency_cap_days": "0"}, "frequency_cap_days"),
        ({"frequency_cap_messages": "2", "frequency_cap_days": "400"}, "frequency_cap_days"),
    ],
)
def test_the_organization_form_refuses_a_cap_that_is_not_positive(
    admin_client, fields, error_field
):
    organization = OrganizationFactory()
    url = reverse("admin:setter_organization_change", args=[organization.pk])
    data = {
        "name": organization.name,
        "slug": organization.slug,
        "inbound_auth_mode": organization.inbound_auth_mode,
        "frequency_cap_days": "7",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        **fields,
    }

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert error_field in response.context["adminform"].form.errors
    organization.refresh_from_db()
    assert organization.frequency_cap_messages is None
