"""The campaign REST API: read the body, call a service, answer with the campaign object.

Every campaign is looked up by its API id within the calling organization, so another
organization's id is a 404 like one that never existed.
"""

from django.core.exceptions import ValidationError
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from audiences.models import Lead
from campaigns import retries, services, testsends
from campaigns.models import Campaign, Send
from campaigns.rendering import MissingParameter, api_parameters, render_body, send_renderer
from setter.api.contract import no_body, validated_body
from setter.api.errors import BadRequest, Conflict, TooManyRequests
from setter.api.querying import compile_filter, paginate, parse_sort, query_from_body
from setter.api.views import ApiView
from setter.ids import pk_from_text

from . import schema
from .contract import (
    PreviewBodySerializer,
    QueryBodySerializer,
    RetryBodySerializer,
    StartBodySerializer,
    TestSendBodySerializer,
)
from .parsing import campaign_changes
from .querying import CAMPAIGN_FILTERS, CAMPAIGN_SORTS, DEFAULT_SORT
from .representations import API_STATUSES, campaign_json, campaign_queryset, retry_json
from .services import DuplicateCampaignId, create_campaign, duplicate_from_body, update_campaign


def _campaign(request, campaign_id: str) -> Campaign:
    campaign = campaign_queryset().filter(organization=request.auth, api_id=campaign_id).first()
    if campaign is None:
        raise NotFound(f"No campaign with id {campaign_id!r}")
    return campaign


def _answer(campaign: Campaign, status_code=status.HTTP_200_OK) -> Response:
    """The campaign as stored now (sends, audiences and stats read afresh)."""
    fresh = campaign_queryset().get(pk=campaign.pk)
    return Response({"campaign": campaign_json(fresh)}, status=status_code)


def _conflict(error: ValidationError) -> Conflict:
    return Conflict("; ".join(error.messages))


class CampaignsView(ApiView):
    @schema.create_campaign_schema
    def post(self, request):
        changes = campaign_changes(request.data, request.auth)
        try:
            campaign = create_campaign(request.auth, changes)
        except DuplicateCampaignId as error:
            raise Conflict(f"id: a campaign with id {error.args[0]!r} already exists") from error
        return _answer(campaign, status.HTTP_201_CREATED)


class CampaignView(ApiView):
    @schema.get_campaign_schema
    def get(self, request, campaign_id):
        return Response({"campaign": campaign_json(_campaign(request, campaign_id))})

    @schema.update_campaign_schema
    def patch(self, request, campaign_id):
        campaign = _campaign(request, campaign_id)
        if not campaign.is_editable:
            raise Conflict(
                f"The campaign is {API_STATUSES[campaign.status]}: only a draft can be updated"
            )
        changes = campaign_changes(request.data, request.auth, campaign=campaign)
        try:
            update_campaign(campaign, changes)
        except services.CampaignNotEditable as error:
            raise _conflict(error) from error
        return _answer(campaign)

    @schema.delete_campaign_schema
    def delete(self, request, campaign_id):
        try:
            services.delete_campaign(_campaign(request, campaign_id))
        except services.CampaignTransitionError as error:
            raise _conflict(error) from error
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignStartView(ApiView):
    @schema.start_campaign_schema
    def post(self, request, campaign_id):
        campaign = _campaign(request, campaign_id)
        data = validated_body(request.data, StartBodySerializer)
        try:
            services.start_campaign(
                campaign, scheduled_for=data.get("scheduledFor"), stop_at=data.get("stopAt")
            )
        except services.CampaignTransitionError as error:
            raise _conflict(error) from error
        return _answer(campaign)


class CampaignStopView(ApiView):
    @schema.stop_campaign_schema
    def post(self, request, campaign_id):
        no_body(request.data)
        campaign = _campaign(request, campaign_id)
        try:
            services.transition_campaign(campaign, "stop", reason="Stopped through the API.")
        except services.CampaignTransitionError as error:
            raise _conflict(error) from error
        return _answer(campaign)


class CampaignDuplicateView(ApiView):
    @schema.duplicate_campaign_schema
    def post(self, request, campaign_id):
        campaign = _campaign(request, campaign_id)
        try:
            copy = duplicate_from_body(request.data, campaign)
        except DuplicateCampaignId as error:
            raise Conflict(f"id: a campaign with id {error.args[0]!r} already exists") from error
        except ValidationError as error:
            raise _conflict(error) from error
        return _answer(copy, status.HTTP_201_CREATED)


class CampaignQueryView(ApiView):
    @schema.query_campaigns_schema
    def post(self, request):
        query = query_from_body(request.data, QueryBodySerializer)
        order = parse_sort(query.sort, CAMPAIGN_SORTS) or DEFAULT_SORT
        campaigns = campaign_queryset().filter(
            compile_filter(query.filter, CAMPAIGN_FILTERS), organization=request.auth
        )
        page = paginate(campaigns, order, limit=query.limit, cursor=query.cursor)
        return Response(
            {
                "campaigns": [campaign_json(campaign) for campaign in page.items],
                "next": page.next,
                "prev": page.prev,
            }
        )


def _send(request, campaign_id: str, send_id: str) -> Send:
    campaign = _campaign(request, campaign_id)
    sends = Send.objects.select_related("template", "campaign__organization")
    send = sends.filter(campaign=campaign, pk=pk_from_text(send_id)).first()  # type: ignore[misc]  # pk=None matches no row: not found
    if send is None:
        raise NotFound(f"No send {send_id!r} in campaign {campaign_id!r}")
    return send


def _lead(request, lead_id: str) -> Lead:
    lead = Lead.objects.filter(organization=request.auth, pk=pk_from_text(lead_id)).first()  # type: ignore[misc]  # pk=None matches no row: not found
    if lead is None:
        raise NotFound(f"leadId: no lead {lead_id!r}")
    return lead


class TestSendView(ApiView):
    @schema.test_send_schema
    def post(self, request, campaign_id, send_id):
        send = _send(request, campaign_id, send_id)
        data = validated_body(request.data, TestSendBodySerializer)
        lead = _lead(request, data["leadId"]) if "leadId" in data else None
        try:
            test_send = testsends.send_test(
                send, phone=data["phone"], lead=lead, requested_by=f"API key of {request.auth}"
            )
        except testsends.TestSendThrottled as throttled:
            raise TooManyRequests(throttled.messages[0], throttled.retry_after) from throttled
        except testsends.TestSendRefused as refused:
            if refused.field == "phone":
                raise BadRequest(refused.messages[0]) from refused
            raise _conflict(refused) from refused
        return Response(
            {"testSend": testsends.test_send_json(test_send)}, status=status.HTTP_201_CREATED
        )


class SendRetryView(ApiView):
    @schema.retry_send_schema
    def post(self, request, campaign_id, send_id):
        send = _send(request, campaign_id, send_id)
        data = validated_body(request.data, RetryBodySerializer)
        try:
            wave = retries.retry_failed(
                send,
                at=data["at"],
                include=data.get("include", []),
                requested_by=f"API key of {request.auth}",
            )
        except retries.RetryRefused as refused:
            if refused.field:
                raise BadRequest(f"{refused.field}: {refused.messages[0]}") from refused
            raise _conflict(refused) from refused
        return Response({"retry": retry_json(wave)}, status=status.HTTP_201_CREATED)


class TestSendStateView(ApiView):
    @schema.get_test_send_schema
    def get(self, request, campaign_id, send_id, test_send_id):
        send = _send(request, campaign_id, send_id)
        test_send = send.test_sends.filter(pk=pk_from_text(test_send_id)).first()  # type: ignore[misc]  # pk=None matches no row: not found
        if test_send is None:
            raise NotFound(f"No test send {test_send_id!r} of send {send_id!r}")
        return Response({"testSend": testsends.test_send_json(test_send)})


class SendPreviewView(ApiView):
    @schema.preview_send_schema
    def post(self, request, campaign_id, send_id):
        send = _send(request, campaign_id, send_id)
        lead = _lead(request, validated_body(request.data, PreviewBodySerializer)["leadId"])
        try:
            parameters = send_renderer(send)(lead)
        except MissingParameter as missing:
            return Response(
                {
                    "parameters": None,
                    "headerParameters": None,
                    "buttonParameters": None,
                    "body": None,
                    "skipped": {"reason": "missing_parameter", "message": str(missing)},
                }
            )
        return Response(
            {
                **api_parameters(parameters, send.template.parameter_slots),
                "body": render_body(send.template.body_text, parameters),
                "skipped": None,
            }
        )
