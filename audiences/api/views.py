"""The REST API of audiences: authenticate the organization's key, read the body, call a service."""

from rest_framework.response import Response
from rest_framework.views import APIView

from audiences.services import create_api_audience
from webhooks.parsing import OrjsonParser, read_body

from .authentication import (
    BearerApiKeyAuthentication,
    IsApiOrganization,
    XApiKeyAuthentication,
)
from .errors import api_exception_handler
from .parsing import segment_from_body
from .schema import create_segment_schema


class SegmentsView(APIView):
    authentication_classes = [XApiKeyAuthentication, BearerApiKeyAuthentication]
    permission_classes = [IsApiOrganization]
    parser_classes = [OrjsonParser]

    def initial(self, request, *args, **kwargs):
        # 10,000 persons with tags outgrow Django's 2.5 MB body limit.
        read_body(request._request)
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self):
        return api_exception_handler

    @create_segment_schema
    def post(self, request):
        segment = segment_from_body(request.data)
        audience, leads = create_api_audience(organization=request.auth, **segment)
        persons = [
            {"id": str(lead.pk), "externalId": lead.external_id, "email": lead.email}
            for lead in leads
        ]
        return Response({"data": {"id": str(audience.pk), "persons": persons}, "errorMessage": ""})
