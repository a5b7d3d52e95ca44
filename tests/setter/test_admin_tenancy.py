"""The admin is organization-scoped: a staff member of org A never lists, opens, changes or
picks org B's objects; a superuser sees every organization. Exercised over HTTP."""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from audiences.models import Audience, Lead, LeadEvent, OptOut
from campaigns.models import Campaign, Send
from messaging.models import MessageTemplate, WhatsAppNumber
from setter import services
from setter.models import ApiKey, Organization, WebhookSigningKey
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadEventFactory,
    LeadFactory,
    MessageTemplateFactory,
    OptOutFactory,
    OrganizationFactory,
    SendFactory,
    UserFactory,
    WhatsAppNumberFactory,
)
from tests.setter.admin_forms import change_form_post_data, choice_fields

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Scoped:
    """One org-scoped model and a text field a staff member could edit on it."""

    model: type
    field: str

    def __str__(self):
        return self.model._meta.label

    def url(self, action, *args):
        return reverse(f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}_{action}", args=args)  # fmt: skip


SCOPED_MODELS = [
    Scoped(Organization, "name"),
    Scoped(ApiKey, "name"),
    Scoped(WebhookSigningKey, "name"),
    Scoped(WhatsAppNumber, "display_phone_number"),
    Scoped(MessageTemplate, "body_text"),
    Scoped(Audience, "name"),
    Scoped(Lead, "first_name"),
    Scoped(OptOut, "note"),
    Scoped(LeadEvent, "event_type"),
    Scoped(Campaign, "name"),
]
by_model = pytest.mark.parametrize("scoped", SCOPED_MODELS, ids=str)


def build_tenant(name):
    """An organization with one object of every scoped model, and a staff member of it."""
    organization = OrganizationFactory(name=f"Org {name}", slug=f"org-{name.lower()}")
    number = WhatsAppNumberFactory(organization=organization)
    template = MessageTemplateFactory(organization=organization)
    audience = AudienceFactory(organization=organization, name=f"Audience {name}")
    campaign = CampaignFactory(organization=organization, whatsapp_number=number)
    campaign.audiences.add(audience)
    send = SendFactory(campaign=campaign, template=template)
    objects = {
        Organization: organization,
        ApiKey: services.create_api_key(organization, f"key {name}")[0],
        WebhookSigningKey: services.create_signing_key(organization, f"secret {name}"),
        WhatsAppNumber: number,
        MessageTemplate: template,
        Audience: audience,
        Lead: LeadFactory(audience=audience, first_name=f"Lead {name}"),
        OptOut: OptOutFactory(organization=organization),
        LeadEvent: LeadEventFactory(organization=organization),
        Campaign: campaign,
        Send: send,
    }
    return objects, UserFactory(organization=organization)


@pytest.fixture
def tenants():
    return build_tenant("A"), build_tenant("B")


@pytest.fixture
def staff_a(client, tenants):
    (_, user_a), _ = tenants
    client.force_login(user_a)
    return client


def listed_pks(response):
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def refreshed(obj):
    return obj.__class__.objects.get(pk=obj.pk)


@by_model
def test_staff_list_only_their_organizations_rows(staff_a, tenants, scoped):
    (a, _), (b, _) = tenants

    response = staff_a.get(scoped.url("changelist"))

    assert listed_pks(response) == {a[scoped.model].pk}
    page = response.content.decode()
    assert scoped.url("change", b[scoped.model].pk) not in page
    assert "Org B" not in page  # not in a row, nor in a list filter's choices


@by_model
def test_staff_cannot_open_another_organizations_object(staff_a, tenants, scoped):
    (a, _), (b, _) = tenants
    assert staff_a.get(scoped.url("change", a[scoped.model].pk)).status_code == 200

    response = staff_a.get(scoped.url("change", b[scoped.model].pk))

    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response.url == reverse("admin:index")
        follow = staff_a.get(response.url)
        assert str(b[scoped.model]) not in follow.content.decode()


@by_model
def test_staff_cannot_change_another_organizations_object(staff_a, tenants, scoped):
    (a, _), (b, _) = tenants
    own, other = a[scoped.model], b[scoped.model]
    form_page = staff_a.get(scoped.url("change", own.pk))
    editable = scoped.field in form_page.context["adminform"].form.fields
    data = change_form_post_data(form_page, **{scoped.field: "Changed by A"})
    before = {f.attname: f.value_from_object(other) for f in other._meta.concrete_fields}

    response = staff_a.post(scoped.url("change", other.pk), data)

    assert response.status_code in (302, 403, 404)
    if response.status_code == 302:
        assert response.url == reverse("admin:index")
    after = refreshed(other)
    assert {f.attname: f.value_from_object(after) for f in after._meta.concrete_fields} == before

    if editable:
        # The same form does save on the staff member's own object: the refusal above is
        # the scoping, not a malformed post.
        response = staff_a.post(scoped.url("change", own.pk), data)
        assert response.status_code == 302, response.context and response.context.get("errors")
        assert getattr(refreshed(own), scoped.field) == "Changed by A"


@by_model
def test_form_choices_offer_only_the_staff_members_organization(staff_a, tenants, scoped):
    (a, _), (b, _) = tenants
    response = staff_a.get(scoped.url("add"))
    if response.status_code == 403:  # written by the system, not added by hand
        response = staff_a.get(scoped.url("change", a[scoped.model].pk))
    assert response.status_code == 200

    for name, field in choice_fields(response).items():
        related = field.queryset.model
        if related not in a:
            continue
        offered = set(field.queryset.values_list("pk", flat=True))
        assert a[related].pk in offered, name
        assert b[related].pk not in offered, name


def test_campaign_form_offers_only_own_numbers_audiences_and_templates(staff_a, tenants):
    (a, _), (b, _) = tenants
    response = staff_a.get(reverse("admin:campaigns_campaign_add"))
    fields = choice_fields(response)

    numbers = set(fields["whatsapp_number"].queryset)
    assert a[WhatsAppNumber] in numbers and b[WhatsAppNumber] not in numbers
    templates = {
        template for name, field in fields.items() if name.endswith("template")
        for template in field.queryset
    }  # fmt: skip
    assert a[MessageTemplate] in templates and b[MessageTemplate] not in templates


@by_model
def test_superuser_sees_every_organization(client, tenants, scoped):
    (a, _), (b, _) = tenants
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))

    response = client.get(scoped.url("changelist"))

    assert {a[scoped.model].pk, b[scoped.model].pk} <= listed_pks(response)
    assert client.get(scoped.url("change", b[scoped.model].pk)).status_code == 200


def test_staff_without_membership_sees_nothing(client, tenants):
    client.force_login(UserFactory())

    assert client.get(reverse("admin:setter_organization_changelist")).status_code == 403
    index = client.get(reverse("admin:index"))
    assert "Org A" not in index.content.decode()
