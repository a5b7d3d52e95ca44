"""Factories for the domain, shared by every test package."""

import datetime as dt
from zoneinfo import ZoneInfo

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from audiences.models import Audience, Lead, LeadEvent, OptOut
from campaigns.models import Campaign, Send, SendRecipient
from messaging.models import Category, MessageTemplate, WhatsAppNumber
from setter.models import Membership, Organization
from setter.phones import phone_zones


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw-123456")

    @factory.post_generation
    def organization(self, create, extracted, **kwargs):
        self.save()
        if extracted is not None:
            Membership.objects.create(user=self, organization=extracted)


class WhatsAppNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WhatsAppNumber

    organization = factory.SubFactory(OrganizationFactory)
    display_phone_number = factory.Sequence(lambda n: f"+1 555 010 {n:04d}")
    phone_number_id = factory.Sequence(lambda n: f"10{n:010d}")
    waba_id = factory.Sequence(lambda n: f"20{n:010d}")
    access_token = factory.Sequence(lambda n: f"sandbox-token-{n}")
    messaging_limit = WhatsAppNumber.MessagingLimit.TIER_100K
    mm_lite_terms_accepted = True


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"template_{n}")
    language = "en_US"
    category = Category.MARKETING
    status = MessageTemplate.Status.APPROVED
    body_text = "Hi {{1}}, your code is {{2}}."


class AudienceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Audience

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Audience {n}")
    status = Audience.Status.READY


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    audience = factory.SubFactory(AudienceFactory)
    organization = factory.LazyAttribute(lambda lead: lead.audience.organization)
    row_number = factory.Sequence(lambda n: n + 1)
    external_id = factory.Sequence(lambda n: f"lead-{n}")
    phone_e164 = factory.Sequence(lambda n: f"+4477009{n:05d}")
    phone_raw = factory.LazyAttribute(lambda lead: lead.phone_e164)
    region = "GB"
    ingest_status = Lead.IngestStatus.OK
    # What the ingest stores (audiences.ingest_rows.classify_lead).
    phone_zone = factory.LazyAttribute(lambda lead: phone_zones(lead.phone_e164).zone)
    phone_zones = factory.LazyAttribute(lambda lead: phone_zones(lead.phone_e164).zones)


class OptOutFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OptOut

    organization = factory.SubFactory(OrganizationFactory)
    phone_e164 = factory.Sequence(lambda n: f"+4477009{n:05d}")


class LeadEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LeadEvent

    organization = factory.SubFactory(OrganizationFactory)
    phone_e164 = factory.Sequence(lambda n: f"+4477009{n:05d}")
    event_type = "purchase"
    occurred_at = factory.LazyFunction(timezone.now)


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    whatsapp_number = factory.SubFactory(
        WhatsAppNumberFactory, organization=factory.SelfAttribute("..organization")
    )
    product_policy_confirmed = True


def _in_a_day():
    return timezone.now() + dt.timedelta(days=1)


class SendFactory(factory.django.DjangoModelFactory):
    """A send one day out in UTC; scheduled_for is set directly for speed of setup."""

    class Meta:
        model = Send

    campaign = factory.SubFactory(CampaignFactory)
    scheduled_for = factory.LazyFunction(_in_a_day)
    local_date = factory.LazyAttribute(lambda s: s.scheduled_for.date())
    local_time = factory.LazyAttribute(lambda s: s.scheduled_for.time().replace(tzinfo=None))
    time_zone = "UTC"
    category = Category.MARKETING
    template = factory.SubFactory(
        MessageTemplateFactory,
        organization=factory.SelfAttribute("..campaign.organization"),
        category=factory.SelfAttribute("..category"),
    )
    # One entry per parameter of the template (body, header, buttons), so the send passes
    # the editor's validation.
    parameter_mapping = factory.LazyAttribute(
        lambda s: ["first_name"] * len(s.template.parameter_slots)
    )


class LocalTimeSendFactory(SendFactory):
    """A send at each recipient's local time (issue 16.1): 10:00 on Monday 15 March 2027 in
    each recipient's zone, London the fallback; scheduled_for is London's until the
    campaign is scheduled (campaigns.local_time.place_first_waves)."""

    local_date = dt.date(2027, 3, 15)
    local_time = dt.time(10)
    time_zone = "Europe/London"
    recipient_local_time = True
    scheduled_for = factory.LazyAttribute(
        lambda s: dt.datetime.combine(s.local_date, s.local_time, tzinfo=ZoneInfo(s.time_zone))
    )


class SendRecipientFactory(factory.django.DjangoModelFactory):
    """One message of a send, queued unless told otherwise; no lead behind it by default."""

    class Meta:
        model = SendRecipient

    send = factory.SubFactory(SendFactory)
    phone_e164 = factory.Sequence(lambda n: f"+5511988{n:06d}")
