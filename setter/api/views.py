"""The base of every REST API view: the organization's key, orjson bodies, the seeds' errors."""

from rest_framework.views import APIView

from . import schema  # noqa: F401  (registers the key schemes with drf-spectacular)
from .authentication import BearerApiKeyAuthentication, IsApiOrganization, XApiKeyAuthentication
from .bodies import refuse_control_characters_in_path
from .errors import api_exception_handler
from .parsing import BodyAfterCredentials, OrjsonParser


class ApiView(BodyAfterCredentials, APIView):
    """`request.auth` is the calling Organization; every lookup must be scoped to it. The
    body is read only after the key is checked (bulk bodies of 10,000 persons or targets
    outgrow Django's 2.5 MB limit, so BodyAfterCredentials reads it, bounded)."""

    authentication_classes = [XApiKeyAuthentication, BearerApiKeyAuthentication]
    permission_classes = [IsApiOrganization]
    parser_classes = [OrjsonParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refuse_control_characters_in_path(kwargs)

    def get_exception_handler(self):
        return api_exception_handler
