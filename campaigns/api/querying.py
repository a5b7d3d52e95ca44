"""What the campaign query endpoint filters and sorts on (seed 003's queryCampaigns)."""

from setter.api.querying import FilterField, both_cases

from .representations import STATUS_FILTER_VALUES

MAX_LIMIT = 100
DEFAULT_SORT = [("created_at", True)]

CAMPAIGN_FILTERS = both_cases(
    {
        "status": FilterField("status", "text", STATUS_FILTER_VALUES),
        "id": FilterField("api_id", "text"),
        "name": FilterField("name", "text"),
        "segments": FilterField("audiences", "many"),
        "senderId": FilterField("whatsapp_number__phone_number_id", "text"),
        "createdAt": FilterField("created_at", "datetime"),
        "updatedAt": FilterField("updated_at", "datetime"),
    }
)
CAMPAIGN_SORTS = both_cases({"createdAt": "created_at", "updatedAt": "updated_at", "name": "name"})
