"""The OpenAPI schema and the interactive docs are served by the app, without the internet."""

import io

import yaml
from django.core.management import call_command


def test_the_schema_describes_both_webhooks_with_the_seed_examples(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    audience_filter = paths["/api/v1/webhooks/campaigns/audience-filter"]["post"]
    lead_events = paths["/api/v1/webhooks/lead-events"]["post"]
    examples = audience_filter["requestBody"]["content"]["application/json"]["examples"]
    assert {"campaignId": 42, "sendId": 137, "mode": "include"}.items() <= examples[
        "IncludeByExternalId"
    ]["value"].items()
    assert set(audience_filter["responses"]) == {"200", "400", "401", "404", "409", "413", "415"}
    assert audience_filter["security"] == [{"apiKey": []}, {"hmacSignature": []}]
    assert any(p["name"] == "X-Setter-Organization" for p in lead_events["parameters"])
    assert schema["components"]["securitySchemes"]["hmacSignature"]["name"] == (
        "X-Setter-Signature"
    )


def test_the_interactive_docs_load_from_our_own_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/schema/" in page
    assert "drf_spectacular_sidecar/swagger-ui-dist" in page
    assert "cdn.jsdelivr.net" not in page


def test_the_schema_is_valid_openapi_and_generates_without_warnings(db):
    """Every endpoint is described: a view drf-spectacular cannot introspect is a warning."""
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())
