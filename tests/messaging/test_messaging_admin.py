"""WhatsApp numbers and templates in the admin: the access token is write-only."""

import pytest
from django.test import Client
from django.urls import reverse

from messaging.models import MessageTemplate, WhatsAppNumber
from tests.factories import (
    MessageTemplateFactory,
    OrganizationFactory,
    UserFactory,
    WhatsAppNumberFactory,
)
from tests.setter.admin_forms import change_form_post_data

pytestmark = pytest.mark.django_db

SECRET = "EAAG-very-secret-token"
NUMBERS = reverse("admin:messaging_whatsappnumber_changelist")
TEMPLATES = reverse("admin:messaging_messagetemplate_changelist")


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture
def staff(org):
    browser = Client()
    browser.force_login(UserFactory(organization=org))
    return browser


def number_url(number):
    return reverse("admin:messaging_whatsappnumber_change", args=[number.pk])


def test_the_access_token_is_never_displayed(staff, org):
    number = WhatsAppNumberFactory(organization=org, access_token=SECRET)

    listing = staff.get(NUMBERS)
    form = staff.get(number_url(number))

    assert number.display_phone_number in listing.content.decode()
    assert SECRET not in listing.content.decode()
    assert form.status_code == 200
    assert SECRET not in form.content.decode()
    assert 'type="password"' in form.content.decode()


def test_a_blank_token_on_change_keeps_the_stored_one(staff, org):
    number = WhatsAppNumberFactory(organization=org, access_token=SECRET)
    data = change_form_post_data(
        staff.get(number_url(number)), access_token="", messaging_limit="TIER_10K"
    )

    response = staff.post(number_url(number), data)

    assert response.status_code == 302
    number.refresh_from_db()
    assert number.access_token == SECRET
    assert number.messaging_limit_count == 10_000


def test_a_new_token_replaces_the_stored_one(staff, org):
    number = WhatsAppNumberFactory(organization=org, access_token=SECRET)
    data = change_form_post_data(staff.get(number_url(number)), access_token="EAAG-rotated")

    staff.post(number_url(number), data)

    number.refresh_from_db()
    assert number.access_token == "EAAG-rotated"


def number_form(org, **changes):
    return {
        "organization": str(org.pk),
        "display_phone_number": "+44 20 7946 0000",
        "phone_number_id": "109876543210",
        "waba_id": "209876543210",
        "access_token": SECRET,
        "messaging_limit": "TIER_2K",
        "throughput_mps": "80",
        "mm_lite_terms_accepted": "on",
        "quality_rating": "",
        **changes,
    }


def test_adding_a_number_requires_a_token(staff, org):
    url = reverse("admin:messaging_whatsappnumber_add")

    refused = staff.post(url, number_form(org, access_token=""))
    added = staff.post(url, number_form(org))

    assert refused.status_code == 200
    assert "access_token" in refused.context["adminform"].form.errors
    assert added.status_code == 302
    number = WhatsAppNumber.objects.get()
    assert (number.access_token, number.messaging_limit_count) == (SECRET, 2_000)
    assert number.mm_lite_terms_accepted is True


def test_templates_list_name_language_category_status_and_parameter_count(staff, org):
    MessageTemplateFactory(
        organization=org, name="spring_sale", body_text="Hi {{1}}, {{2}} off with {{3}}"
    )
    MessageTemplateFactory(
        organization=org, name="order_update", category="UTILITY", status="PENDING",
        body_text="Order shipped.",
    )  # fmt: skip
    MessageTemplateFactory(name="other_orgs_template")

    page = staff.get(TEMPLATES)
    utility = staff.get(TEMPLATES, {"category__exact": "UTILITY"})
    approved = staff.get(TEMPLATES, {"status__exact": "APPROVED"})

    rows = {t.name: t for t in page.context["cl"].result_list}
    assert set(rows) == {"spring_sale", "order_update"}
    assert [t.name for t in utility.context["cl"].result_list] == ["order_update"]
    assert [t.name for t in approved.context["cl"].result_list] == ["spring_sale"]
    html = page.content.decode()
    assert '<td class="field-parameter_count">3</td>' in html
    assert '<td class="field-parameter_count">0</td>' in html


def test_a_template_form_shows_its_parameter_count(staff, org):
    template = MessageTemplateFactory(organization=org, body_text="{{1}} and {{2}}")

    page = staff.get(reverse("admin:messaging_messagetemplate_change", args=[template.pk]))

    assert page.status_code == 200
    assert "Parameters" in page.content.decode()
    assert MessageTemplate.objects.get(pk=template.pk).parameter_count == 2


def test_sync_action_pulls_templates_and_limits_from_meta(client, sandbox, number):
    from messaging.models import MessageTemplate, WhatsAppNumber
    from tests.factories import UserFactory

    sandbox.register_number(number, messaging_limit_tier="TIER_UNLIMITED", quality_rating="GREEN")
    sandbox._post(
        "templates",
        {"waba_id": number.waba_id, "name": "welcome", "language": "en_US",
         "category": "UTILITY", "status": "APPROVED", "body_text": "Welcome {{1}}"},
    )  # fmt: skip
    client.force_login(UserFactory(organization=number.organization))

    response = client.post(
        "/admin/messaging/whatsappnumber/",
        {"action": "sync_from_meta", "_selected_action": [number.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "templates" in response.content.decode()
    number.refresh_from_db()
    assert number.messaging_limit == WhatsAppNumber.MessagingLimit.TIER_UNLIMITED
    template = MessageTemplate.objects.get(organization=number.organization, name="welcome")
    assert (template.category, template.status) == ("UTILITY", "APPROVED")


def test_sync_action_reports_metas_refusal(client, sandbox, number):
    from tests.factories import UserFactory

    sandbox.register_number(number, access_token="rotated-elsewhere")
    client.force_login(UserFactory(organization=number.organization))

    response = client.post(
        "/admin/messaging/whatsappnumber/",
        {"action": "sync_from_meta", "_selected_action": [number.pk]},
        follow=True,
    )

    assert "Meta answered" in response.content.decode()


def remote_template(sandbox, number, name, status="APPROVED"):
    sandbox._post(
        "templates",
        {"waba_id": number.waba_id, "name": name, "language": "en_US",
         "category": "MARKETING", "status": status, "body_text": "Hi {{1}}"},
    )  # fmt: skip


def sent_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def synced_world(sandbox, number):
    """Meta lists a new template and one whose status changed; one of ours is gone there."""
    MessageTemplateFactory(
        organization=number.organization, name="promo", status=MessageTemplate.Status.PENDING
    )
    MessageTemplateFactory(
        organization=number.organization, name="old_offer", waba_id=number.waba_id
    )
    remote_template(sandbox, number, "welcome")
    remote_template(sandbox, number, "promo")
    return number


def test_the_number_pages_button_syncs_and_names_what_changed(client, synced_world):
    number = synced_world
    client.force_login(UserFactory(organization=number.organization))
    sync_url = reverse("admin:messaging_whatsappnumber_sync", args=[number.pk])
    assert sync_url in client.get(number_url(number)).content.decode()

    response = client.post(sync_url, follow=True)

    assert response.redirect_chain[-1][0] == number_url(number)
    assert sent_messages(response) == [
        f"{number}: number's quality rating updated; new templates: welcome (en_US); "
        "status changed: promo (en_US) PENDING → APPROVED; "
        "removed by Meta (now DISABLED): old_offer (en_US)."
    ]
    assert MessageTemplate.objects.get(name="old_offer").status == MessageTemplate.Status.DISABLED


def test_the_template_lists_button_syncs_every_number_of_the_organization(client, synced_world):
    number = synced_world
    foreign = WhatsAppNumberFactory()
    client.force_login(UserFactory(organization=number.organization))
    sync_url = reverse("admin:messaging_messagetemplate_sync")
    assert sync_url in client.get(TEMPLATES).content.decode()

    response = client.post(sync_url, follow=True)

    assert response.redirect_chain[-1][0] == TEMPLATES
    [report] = sent_messages(response)
    assert report.startswith(f"{number}: number's quality rating updated; new templates: welcome")
    assert str(foreign) not in report
    assert not MessageTemplate.objects.filter(organization=foreign.organization).exists()


def test_a_sync_with_nothing_new_says_so(client, sandbox, number):
    remote_template(sandbox, number, "welcome")
    client.force_login(UserFactory(organization=number.organization))
    sync_url = reverse("admin:messaging_whatsappnumber_sync", args=[number.pk])
    client.post(sync_url, follow=True)  # the first sync copies it; its report is read

    response = client.post(sync_url, follow=True)

    assert sent_messages(response) == [f"{number}: number unchanged; templates unchanged (1)."]


def test_the_sync_button_refuses_another_organizations_number(client, sandbox, number):
    client.force_login(UserFactory(organization=OrganizationFactory()))

    response = client.post(reverse("admin:messaging_whatsappnumber_sync", args=[number.pk]))

    assert response.status_code == 404
    assert sandbox.requests()["count"] == 0


def test_the_sync_button_only_answers_a_post(client, number):
    client.force_login(UserFactory(organization=number.organization))

    response = client.get(reverse("admin:messaging_whatsappnumber_sync", args=[number.pk]))

    assert response.status_code == 405
