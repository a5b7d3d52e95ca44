import pytest
from django.urls import reverse

from setter import services
from setter.models import ApiKey, WebhookSigningKey
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def test_api_key_is_stored_only_as_a_hash_and_verifies():
    org = OrganizationFactory()
    api_key, raw_key = services.create_api_key(org, "partner")

    stored = ApiKey.objects.get(pk=api_key.pk)
    assert raw_key not in {stored.key_hash, stored.prefix, stored.name}
    assert stored.key_hash == services.hash_api_key(raw_key)
    assert raw_key.startswith(stored.prefix)

    authenticated = services.authenticate_api_key(raw_key)
    assert authenticated == api_key
    assert authenticated.organization == org
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


def test_wrong_and_revoked_keys_do_not_verify():
    org = OrganizationFactory()
    api_key, raw_key = services.create_api_key(org, "partner")

    assert services.authenticate_api_key(raw_key + "x") is None
    assert services.authenticate_api_key("") is None

    services.revoke_api_key(api_key)
    assert services.authenticate_api_key(raw_key) is None


def test_signature_verifies_with_any_active_key_and_not_a_revoked_one():
    org = OrganizationFactory()
    old = services.create_signing_key(org, "old")
    new = services.create_signing_key(org, "new")
    body = b'{"campaignId":42}'

    for key in (old, new):
        assert services.verify_signature(
            org, body, "sha256=" + services.sign_body(key.secret, body)
        )

    services.revoke_signing_key(old)
    assert not services.verify_signature(
        org, body, "sha256=" + services.sign_body(old.secret, body)
    )
    assert services.verify_signature(org, body, "sha256=" + services.sign_body(new.secret, body))
    assert not services.verify_signature(org, body, "sha256=deadbeef")
    assert not services.verify_signature(org, body, "")


def test_signature_of_another_organization_does_not_verify():
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    key_b = services.create_signing_key(org_b, "b")
    body = b"{}"
    assert not services.verify_signature(
        org_a, body, "sha256=" + services.sign_body(key_b.secret, body)
    )


@pytest.mark.parametrize(
    "model,url_name,shown",
    [
        (ApiKey, "setter_apikey", "New API key: "),
        (WebhookSigningKey, "setter_webhooksigningkey", "New signing secret: "),
    ],
)
def test_the_admin_shows_a_new_credential_once_and_revokes_it(admin_client, model, url_name, shown):
    org = OrganizationFactory()

    response = admin_client.post(
        reverse(f"admin:{url_name}_add"), {"organization": org.pk, "name": "partner"}, follow=True
    )

    [message] = [str(m) for m in response.context["messages"] if str(m).startswith(shown)]
    secret = message.removeprefix(shown).split(" — ")[0]
    credential = model.objects.get(organization=org, name="partner")
    if model is ApiKey:
        assert services.authenticate_api_key(secret) == credential
        assert secret not in {credential.key_hash, credential.prefix}
    else:
        assert credential.secret == secret
    listing = admin_client.get(reverse(f"admin:{url_name}_changelist"))
    assert secret not in listing.content.decode()

    response = admin_client.post(
        reverse(f"admin:{url_name}_changelist"),
        {"action": "revoke", "_selected_action": [credential.pk]},
        follow=True,
    )

    credential.refresh_from_db()
    assert credential.revoked_at is not None
    assert any("Revoked 1 " in str(m) for m in response.context["messages"])
