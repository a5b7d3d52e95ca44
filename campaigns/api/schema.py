"""OpenAPI description of the campaign API: operations, answers and examples.

The bodies are declared in campaigns.api.contract (the readers take their keys from there
too); campaigns.api.representations writes the answers described here.
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers

from audiences.api.schema import BadRequestSerializer, UnauthorizedSerializer
from campaigns.models import SendWave
from messaging.models import ProductPolicy

from .contract import (
    MAX_LEADS,
    MAX_SEGMENTS,
    CampaignBodySerializer,
    DuplicateBodySerializer,
    PreviewBodySerializer,
    QueryBodySerializer,
    RetryBodySerializer,
    SendSerializer,
    SendWindowObjectSerializer,
    StartBodySerializer,
    TestSendBodySerializer,
)
from .querying import MAX_LIMIT
from .representations import STATUS_FILTER_VALUES


class StatsSerializer(serializers.Serializer):
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)
    messagesSent = serializers.IntegerField(help_text="Accepted by Meta: sent+delivered+read.")
    recipients = serializers.IntegerField()
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="queued, sending, sent, delivered, read, failed, skipped, unknown.",
    )
    limitedReporting = serializers.IntegerField(
        help_text="Recipients in regions where Meta reports little (EEA, UK, Japan, Korea)."
    )
    progress = serializers.FloatField(help_text="0 to 1.")


class SendRateSerializer(serializers.Serializer):
    configured = serializers.IntegerField(help_text="maxMessagesPerSecond")
    effective = serializers.FloatField(
        help_text="What the send goes at now: its number's throughput (synced from Meta) and "
        "Meta's 130429 answers can hold it below its own rate."
    )
    reason = serializers.CharField(allow_null=True, help_text="Why effective < configured.")


class RetryObjectSerializer(serializers.Serializer):
    wave = serializers.IntegerField(help_text="2 for the first retry (the send itself is 1).")
    status = serializers.ChoiceField(["pending", "started", "cancelled"])
    scheduledFor = serializers.DateTimeField()
    include = serializers.ListField(
        child=serializers.CharField(), help_text="The permanent failure classes included."
    )
    chosen = serializers.IntegerField(help_text="Failed recipients the wave chose (at start).")
    requeued = serializers.IntegerField(
        help_text="Of those, queued again: the rest the send no longer reaches (opted out, "
        "left the audience, held by the frequency cap)."
    )
    startedAt = serializers.DateTimeField(allow_null=True)


class WaveObjectSerializer(serializers.Serializer):
    wave = serializers.IntegerField(help_text="1 for the first instant, then in time order.")
    status = serializers.ChoiceField(SendWave.Status.values)
    scheduledFor = serializers.DateTimeField(help_text="The instant its zones read localTime.")
    zones = serializers.ListField(child=serializers.CharField())
    shiftedZones = serializers.ListField(
        child=serializers.CharField(),
        help_text="Of those, zones where localTime does not exist that day (clocks jump): the "
        "wave is the next valid minute there.",
    )
    recipients = serializers.IntegerField(help_text="Written when it materialized.")
    shifted = serializers.IntegerField(help_text="Of those, in shiftedZones.")
    startedAt = serializers.DateTimeField(allow_null=True)


class RetryResponseSerializer(serializers.Serializer):
    retry = RetryObjectSerializer()


class SendObjectSerializer(SendSerializer):
    id = serializers.CharField()
    sendId = serializers.IntegerField(
        help_text="The same id as an integer: the sendId of the audience-filter webhook."
    )
    position = serializers.IntegerField()
    status = serializers.CharField()
    statusReason = serializers.CharField()
    scheduledFor = serializers.DateTimeField(allow_null=True)
    rate = SendRateSerializer()
    stats = StatsSerializer()
    retries = RetryObjectSerializer(many=True, help_text="Its retries of failed recipients.")
    waves = WaveObjectSerializer(
        many=True,
        help_text="A send at each recipient's local time: its waves, fixed when the first fires.",
    )


class CampaignObjectSerializer(serializers.Serializer):
    id = serializers.CharField()
    campaignId = serializers.IntegerField(
        help_text="The admin's id: the campaignId of the audience-filter webhook."
    )
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(list(STATUS_FILTER_VALUES))
    paused = serializers.BooleanField(help_text="Held by a pause (status in_progress).")
    statusReason = serializers.CharField()
    senderId = serializers.CharField()
    segmentIds = serializers.ListField(child=serializers.CharField())
    productPolicyConfirmed = serializers.BooleanField()
    productPolicy = serializers.ChoiceField(ProductPolicy.values)
    scheduledFor = serializers.DateTimeField(allow_null=True)
    stopAt = serializers.DateTimeField(allow_null=True)
    sendWindow = SendWindowObjectSerializer(
        allow_null=True, help_text="Its own quiet hours; null: the organization's, if any."
    )
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    stats = StatsSerializer()
    sends = SendObjectSerializer(many=True)
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="Said at scheduling: sends their number's throughput will hold back.",
    )


class CampaignResponseSerializer(serializers.Serializer):
    campaign = CampaignObjectSerializer()


class TestSendErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Meta's error code.")
    title = serializers.CharField(help_text="What it means, in plain words.")


class TestSendObjectSerializer(serializers.Serializer):
    testSendId = serializers.IntegerField()
    phone = serializers.CharField()
    leadId = serializers.CharField(allow_null=True)
    parameters = serializers.ListField(child=serializers.CharField(), help_text="The body's.")
    headerParameters = serializers.ListField(child=serializers.CharField())
    buttonParameters = serializers.ListField(child=serializers.CharField())
    body = serializers.CharField(help_text="The template body as the lead would read it.")
    status = serializers.ChoiceField(choices=["sending", "sent", "delivered", "read", "failed"])
    wamid = serializers.CharField(allow_null=True)
    error = TestSendErrorSerializer(allow_null=True)
    sentAt = serializers.DateTimeField(allow_null=True)
    deliveredAt = serializers.DateTimeField(allow_null=True)
    readAt = serializers.DateTimeField(allow_null=True)
    failedAt = serializers.DateTimeField(allow_null=True)


class TestSendResponseSerializer(serializers.Serializer):
    testSend = TestSendObjectSerializer()


class QueryResponseSerializer(serializers.Serializer):
    campaigns = CampaignObjectSerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="Null on the last page.")
    prev = serializers.CharField(allow_null=True, help_text="Null on the first page.")


class PreviewSkipSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(["missing_parameter"])
    message = serializers.CharField(help_text="Which parameter would be empty for this lead.")


class PreviewResponseSerializer(serializers.Serializer):
    parameters = serializers.ListField(
        child=serializers.CharField(), allow_null=True, help_text="The body's."
    )
    headerParameters = serializers.ListField(child=serializers.CharField(), allow_null=True)
    buttonParameters = serializers.ListField(
        child=serializers.CharField(), allow_null=True, help_text="The URL buttons', in order."
    )
    body = serializers.CharField(allow_null=True)
    skipped = PreviewSkipSerializer(
        allow_null=True,
        help_text="Set when the lead would be skipped (skip reason missing_parameter), not sent.",
    )


CREATE_EXAMPLE = {
    "id": "spring-2030",
    "name": "Spring sale",
    "senderId": "106540352242922",
    "segmentIds": ["12"],
    "productPolicyConfirmed": True,
    "productPolicy": "CLOUD_API_FALLBACK",
    "sends": [
        {
            "template": "spring_sale",
            "language": "en_US",
            "parameters": ["{{ lead.first_name }}", '{{ lead.variables.coupon|default:"20%" }}'],
            "schedule": {
                "localDate": "2030-03-01",
                "localTime": "09:00",
                "timeZone": "Europe/London",
            },
        },
        {"template": "spring_reminder", "parameters": [], "schedule": {"startOffsetMinutes": 1440}},
    ],
}
STATS_EXAMPLE = {
    "startedAt": "2030-03-01T09:00:00.312Z",
    "completedAt": "2030-03-01T09:01:10.004Z",
    "messagesSent": 1198,
    "recipients": 1200,
    "counts": {
        "queued": 0,
        "claimed": 0,
        "sending": 0,
        "sent": 120,
        "delivered": 600,
        "read": 478,
        "failed": 2,
        "skipped": 0,
        "unknown": 0,
    },
    "limitedReporting": 40,
    "progress": 1.0,
}
CAMPAIGN_EXAMPLE = {
    "id": "spring-2030",
    "campaignId": 42,
    "name": "Spring sale",
    "description": "",
    "status": "completed",
    "paused": False,
    "statusReason": "",
    "senderId": "106540352242922",
    "segmentIds": ["12"],
    "productPolicyConfirmed": True,
    "productPolicy": "CLOUD_API_FALLBACK",
    "scheduledFor": "2030-03-01T09:00:00Z",
    "stopAt": None,
    "createdAt": "2030-02-20T10:00:00Z",
    "updatedAt": "2030-03-01T09:01:10Z",
    "stats": STATS_EXAMPLE,
    "sends": [
        {
            "id": "88",
            "sendId": 88,
            "name": "",
            "position": 0,
            "status": "completed",
            "statusReason": "",
            "template": "spring_sale",
            "language": "en_US",
            "category": "MARKETING",
            "parameters": ["{{ lead.first_name }}", '{{ lead.variables.coupon|default:"20%" }}'],
            "schedule": {"localDate": "2030-03-01", "localTime": "09:00:00", "timeZone": "UTC"},
            "scheduledFor": "2030-03-01T09:00:00Z",
            "maxMessagesPerSecond": 20,
            "rate": {"configured": 20, "effective": 20.0, "reason": None},
            "audienceFilter": "webhook_filtered",
            "eventFilter": {
                "mode": "exclude",
                "eventType": "webinar_attended",
                "within": {"minutes": 120},
            },
            "stats": STATS_EXAMPLE,
        }
    ],
    "warnings": [],
}


def _error(code: int, message: str) -> OpenApiExample:
    phrases = {400: "Bad Request", 404: "Not Found", 409: "Conflict"}
    return OpenApiExample(
        f"{code} {phrases[code]}",
        response_only=True,
        status_codes=[str(code)],
        value={"statusCode": code, "message": message, "error": phrases[code]},
    )


_ANSWER = OpenApiExample("Campaign", response_only=True, value={"campaign": CAMPAIGN_EXAMPLE})
_NOT_FOUND = _error(404, "No campaign with id 'spring-2030'")
_UNAUTHORIZED = OpenApiResponse(UnauthorizedSerializer, description="Missing or wrong API key")


def _responses(ok: int, ok_serializer, *errors: int) -> dict:
    descriptions = {
        400: "A field is wrong; the message names its place",
        404: "No such campaign (or lead) in your organization",
        409: "The campaign's status (or a gate) forbids it; the message says why",
    }
    responses = {ok: ok_serializer, 401: _UNAUTHORIZED}
    for code in errors:
        responses[code] = OpenApiResponse(BadRequestSerializer, description=descriptions[code])
    return responses


create_campaign_schema = extend_schema(
    operation_id="create_campaign",
    summary="Create a campaign",
    description=(
        "Create a draft campaign with its sends. Target segments (segmentIds, at most "
        f"{MAX_SEGMENTS}; a phone in several of them is messaged once) or leads (userIds or "
        f"leadIds, at most {MAX_LEADS:,}; they become a segment of their own). Templates are "
        "named, parameters are literals or Django templates over the lead. A send without a "
        "schedule fires when the campaign starts (plus startOffsetMinutes). Templates need not "
        "be approved yet: starting checks that. Nothing is stored on any error."
    ),
    request=CampaignBodySerializer,
    responses=_responses(201, CampaignResponseSerializer, 400, 409),
    examples=[
        OpenApiExample("Create", request_only=True, value=CREATE_EXAMPLE),
        OpenApiExample(
            "Created",
            response_only=True,
            status_codes=["201"],
            value={"campaign": CAMPAIGN_EXAMPLE},
        ),
        _error(
            400,
            "sends[1].template: no template 'spring_remindr'; sends[0].parameters[1]: "
            "template syntax error: {% load %} is not allowed: only the if, for, with, "
            "firstof tags are",
        ),
        _error(409, "id: a campaign with id 'spring-2030' already exists"),
    ],
)

get_campaign_schema = extend_schema(
    operation_id="get_campaign",
    summary="Get a campaign with its stats",
    description=(
        "status: draft, scheduled, in_progress, paused, stopped or completed. stats count "
        "recipients per status over all sends; each send has its own."
    ),
    responses=_responses(200, CampaignResponseSerializer, 404),
    examples=[_ANSWER, _NOT_FOUND],
)

update_campaign_schema = extend_schema(
    operation_id="update_campaign",
    summary="Update a draft campaign",
    description=(
        "Any field of the create body but id; the fields given replace the stored ones, and "
        "sends given replace all sends. Only drafts: 409 otherwise."
    ),
    request=CampaignBodySerializer,
    responses=_responses(200, CampaignResponseSerializer, 400, 404, 409),
    examples=[
        OpenApiExample("Rename", request_only=True, value={"name": "Spring sale (final)"}),
        _ANSWER,
        _error(409, "The campaign is in_progress: only a draft can be updated"),
    ],
)

start_campaign_schema = extend_schema(
    operation_id="start_campaign",
    summary="Start (or schedule) a campaign",
    description=(
        "Schedules a draft. Sends without their own schedule fire at scheduledFor (default: "
        "now) plus their startOffsetMinutes. The admin's onboarding gates apply (approved "
        "templates of the send's category, MM Lite terms and productPolicyConfirmed for "
        "MARKETING, ready segments, the number's messaging limit, sends in the future and in "
        "order): when any fails the answer is 409 listing every problem, separated by '; '. "
        "stopAt ends sending at that instant."
    ),
    request=StartBodySerializer,
    responses=_responses(200, CampaignResponseSerializer, 400, 404, 409),
    examples=[
        OpenApiExample(
            "Later, until a stop time",
            request_only=True,
            value={"scheduledFor": "2030-03-01T09:00:00Z", "stopAt": "2030-03-02T09:00:00Z"},
        ),
        OpenApiExample("Now", request_only=True, value={}),
        _ANSWER,
        _error(
            409,
            "Send 1: template 'spring_sale' is PENDING, not APPROVED; Confirm that recipients "
            "opted in (product policy) before scheduling MARKETING sends",
        ),
    ],
)

stop_campaign_schema = extend_schema(
    operation_id="stop_campaign",
    summary="Stop a campaign",
    description="Messages not yet sent are skipped; status becomes stopped. 409 when finished.",
    request=None,
    responses=_responses(200, CampaignResponseSerializer, 404, 409),
    examples=[_ANSWER, _error(409, "Cannot cancel a completed campaign")],
)

duplicate_campaign_schema = extend_schema(
    operation_id="duplicate_campaign",
    summary="Duplicate a campaign as a new draft",
    description=(
        "A new draft with the same sender, segments, productPolicy and sends (templates, "
        "parameters, category, rate and filters); none of the original's recipients, audience "
        "filter payloads, events or stats. The schedule moves by the fewest whole days that put "
        "every send at least an hour from now on a day its local time exists, keeping each "
        "send's local time and zone and the days between sends (a campaign entirely in the "
        "future keeps its dates); stopAt moves with it. A campaign's own lead list (userIds) "
        "is copied into a list of the copy's own. Any campaign can be duplicated, whatever its "
        "status. 409 when the id is taken."
    ),
    request=DuplicateBodySerializer,
    responses=_responses(201, CampaignResponseSerializer, 400, 404, 409),
    examples=[
        OpenApiExample("A named copy", request_only=True, value={"name": "Spring sale, again"}),
        _ANSWER,
        _error(409, "id: a campaign with id 'spring-2031' already exists"),
    ],
)

delete_campaign_schema = extend_schema(
    operation_id="delete_campaign",
    summary="Delete a campaign",
    description="Drafts and finished (stopped, completed) campaigns only: stop a live one first.",
    responses=_responses(204, OpenApiResponse(description="Deleted"), 404, 409),
    examples=[
        _error(409, "Cannot delete a scheduled campaign: stop it first, or wait until it completes")
    ],
)

query_campaigns_schema = extend_schema(
    operation_id="query_campaigns",
    summary="Query campaigns",
    description=(
        "filter on status, id, name, segments, senderId, createdAt, updatedAt (snake_case "
        "names too) with $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $exists, $and, $or; "
        "sort on createdAt, updatedAt or name (direction 1 or -1; default createdAt -1); "
        f"limit 1 to {MAX_LIMIT} (default 25); pass next from an answer for the next page."
    ),
    request=QueryBodySerializer,
    responses=_responses(200, QueryResponseSerializer, 400),
    examples=[
        OpenApiExample(
            "Scheduled or running, newest first",
            request_only=True,
            value={
                "filter": {"status": {"$in": ["scheduled", "in_progress"]}},
                "sort": [{"field": "created_at", "direction": -1}],
                "limit": 10,
            },
        ),
        OpenApiExample(
            "Page",
            response_only=True,
            value={
                "campaigns": [CAMPAIGN_EXAMPLE],
                "next": "WyJjYW1wYWlnbnMuY2FtcGFpZ24iLC...",
                "prev": None,
            },
        ),
        _error(400, "filter.status.$in[0]: unknown value 'running' (expected one of draft, ...)"),
    ],
)

preview_send_schema = extend_schema(
    operation_id="preview_send",
    summary="Render a send for one lead",
    description="The parameters and the message body the lead would receive, or why the "
    "lead would be skipped instead (a parameter that renders empty is never sent).",
    request=PreviewBodySerializer,
    responses=_responses(200, PreviewResponseSerializer, 400, 404),
    examples=[
        OpenApiExample("Lead", request_only=True, value={"leadId": "3401"}),
        OpenApiExample(
            "Rendered",
            response_only=True,
            value={
                "parameters": ["Ann", "20%"],
                "headerParameters": [],
                "buttonParameters": [],
                "body": "Hi Ann, 20% off!",
                "skipped": None,
            },
        ),
        OpenApiExample(
            "Skipped",
            response_only=True,
            value={
                "parameters": None,
                "headerParameters": None,
                "buttonParameters": None,
                "body": None,
                "skipped": {
                    "reason": "missing_parameter",
                    "message": "Parameter {{1}} ({{ receiver.name }}) is empty for this lead",
                },
            },
        ),
    ],
)

test_send_schema = extend_schema(
    operation_id="test_send",
    summary="Send one message of a send now to a test phone",
    description=(
        "Renders the send for the lead (default: the first lead it would reach now) and sends "
        "it now to one of your organization's test phones, through the same template, "
        "category endpoint and number as the send, so a template or number problem shows up "
        "before the send fires. Meta's refusal is the result (status failed, with Meta's code "
        "and what it means), not an error of this call. Test sends count in no analytics and "
        "touch none of the send's recipients; GET …/test/{testSendId} reads one again as its "
        "status webhooks move it. 409 when the send's gates fail (template not approved, MM "
        "Lite terms), the lead's parameters would be empty, or the send would reach nobody "
        f"; 429 (with Retry-After) past {settings.TEST_SENDS_PER_HOUR} test sends per "
        "organization and hour."
    ),
    request=TestSendBodySerializer,
    responses={
        **_responses(201, TestSendResponseSerializer, 400, 404, 409),
        429: OpenApiResponse(BadRequestSerializer, description="Too many test sends this hour"),
    },
    examples=[
        OpenApiExample("To a test phone", request_only=True, value={"phone": "+447911123456"}),
        OpenApiExample(
            "Sent",
            response_only=True,
            status_codes=["201"],
            value={
                "testSend": {
                    "testSendId": 12,
                    "phone": "+447911123456",
                    "leadId": "3401",
                    "parameters": ["Ann", "20%"],
                    "headerParameters": [],
                    "buttonParameters": [],
                    "body": "Hi Ann, 20% off!",
                    "status": "sent",
                    "wamid": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA",
                    "error": None,
                    "sentAt": "2030-03-01T09:00:01Z",
                    "deliveredAt": None,
                    "readAt": None,
                    "failedAt": None,
                }
            },
        ),
        _error(400, "phone: +447911123999 is not one of your organization's test phones"),
    ],
)

retry_send_schema = extend_schema(
    operation_id="retry_send",
    summary="Retry a completed send's failed recipients only",
    description=(
        "Schedules a retry wave at `at`: then the recipients of this send whose message failed "
        "for a transient reason (Meta or the network, attempts ran out) or a send-level one "
        "(template, token, account) are queued again and sent at the send's rate, the send's "
        "audience, filters, opt-outs and the frequency cap decided again at that time. A "
        "recipient that was sent, delivered, read or is unknown is never messaged again; one "
        "whose failure is of the phone itself (131026 undeliverable, 131049 marketing not "
        "delivered, 131050 stopped marketing, any other recipient-permanent code) only when "
        "its class is in `include`. A completed campaign is scheduled again until the wave "
        "ran; the send's `retries` show each wave. 400 names a bad field; 409 when the send "
        "is not completed, its campaign ended, a retry is already scheduled, or no failure "
        "would be retried."
    ),
    request=RetryBodySerializer,
    responses=_responses(201, RetryResponseSerializer, 400, 404, 409),
    examples=[
        OpenApiExample(
            "In an hour, undeliverable ones too",
            request_only=True,
            value={"at": "2030-03-01T10:00:00Z", "include": ["undeliverable"]},
        ),
        OpenApiExample(
            "Scheduled",
            response_only=True,
            status_codes=["201"],
            value={
                "retry": {
                    "wave": 2,
                    "status": "pending",
                    "scheduledFor": "2030-03-01T10:00:00Z",
                    "include": ["undeliverable"],
                    "chosen": 0,
                    "requeued": 0,
                    "startedAt": None,
                }
            },
        ),
    ],
)


get_test_send_schema = extend_schema(
    operation_id="get_test_send",
    summary="Read a test send",
    description="Its status as Meta's webhooks moved it (sent, delivered, read or failed).",
    responses=_responses(200, TestSendResponseSerializer, 404),
)
