"""The REST API of audiences: authenticate the organization's key, read the body, call a service."""

from rest_framework.response import Response

from audiences.services import create_api_audience
from setter.api.views import ApiView

from .parsing import segment_from_body
from .schema import create_segment_schema


class SegmentsView(ApiView):
    @create_segment_schema
    def post(self, request):
        segment = segment_from_body(request.data)
        audience, leads = create_api_audience(organization=request.auth, **segment)
        persons = [
            {"id": str(lead.pk), "externalId": lead.external_id, "email": lead.email}
            for lead in leads
        ]
        return Response({"data": {"id": str(audience.pk), "persons": persons}, "errorMessage": ""})
