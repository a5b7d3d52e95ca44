"""`POST /api/v1/campaigns/{id}/duplicate` (issue 15.3): the copy as a 201, every refusal
naming its field and creating nothing (the service's rules: tests/campaigns/test_duplication.py)."""

import pytest

from campaigns.models import Campaign
from tests.factories import CampaignFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_the_api_answers_201_with_the_copy(api, body, sender, segment):
    api.post("campaigns", body(id="spring-2031"))

    answer = api.post("campaigns/spring-2031/duplicate", {"id": "spring-2032", "name": "Again"})

    assert answer.status_code == 201
    copy = answer.json()["campaign"]
    assert (copy["id"], copy["name"], copy["status"]) == ("spring-2032", "Again", "draft")
    assert copy["segmentIds"] == [str(segment.pk)]
    assert api.get("campaigns/spring-2032").json() == {"campaign": copy}
    unnamed = api.post("campaigns/spring-2031/duplicate", None).json()["campaign"]
    assert unnamed["name"] == "Spring sale (copy)"


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"colour": "red"}, 400, "colour: unknown key"),
        ({"name": 5}, 400, "name: expected a string"),
        ({"name": "  "}, 400, "name: may not be empty"),
        ({"id": "spring-2031"}, 409, "id: a campaign with id 'spring-2031' already exists"),
    ],
)
def test_a_refused_duplicate_names_its_field_and_creates_nothing(
    api, body, sender, segment, payload, status, message
):
    api.post("campaigns", body(id="spring-2031"))

    answer = api.post("campaigns/spring-2031/duplicate", payload)

    assert answer.status_code == status
    assert message in answer.json()["message"]
    assert Campaign.objects.count() == 1


def test_another_organizations_campaign_cannot_be_duplicated(api):
    foreign = CampaignFactory(organization=OrganizationFactory(), api_id="theirs")

    answer = api.post(f"campaigns/{foreign.api_id}/duplicate")

    assert answer.status_code == 404
    assert Campaign.objects.count() == 1
