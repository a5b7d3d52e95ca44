"""Who is calling a partner webhook: an organization, authenticated in that organization's mode.

`api_key` organizations send `Authorization: Bearer <key>`; `hmac` organizations sign the raw
body (`X-Setter-Signature: sha256=<hex>`). A signature names no organization, so each view says
which organization would have signed its request (the `X-Setter-Organization` header, or the
owner of the `campaignId` that starts the body), from headers and raw bytes: the body is
verified before it is parsed. Only that organization's keys are tried. Every way a
signature can fail — unknown campaign or organization, wrong mode, no key matching — gets the
same answer, so it never tells whether an id exists in another organization.
"""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import BasePermission

from setter.api.parsing import read_body
from setter.models import Organization
from setter.services import authenticate_bearer, verify_signature

SIGNATURE_HEADER = "X-Setter-Signature"
ORGANIZATION_HEADER = "X-Setter-Organization"

INVALID_API_KEY = "The API key is missing, unknown or revoked."
INVALID_SIGNATURE = "The request signature does not match an active signing key."
NO_CREDENTIALS = (
    f"Authenticate with `Authorization: Bearer <api key>` or `{SIGNATURE_HEADER}: sha256=<hex>`, "
    "as your organization's inbound webhook setting says."
)


class ApiKeyAuthentication(BaseAuthentication):
    """Any active API key of an organization whose inbound mode is api_key."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        api_key = authenticate_bearer(header)
        if api_key is None:
            raise AuthenticationFailed(INVALID_API_KEY)
        organization = api_key.organization
        if organization.inbound_auth_mode != Organization.InboundAuthMode.API_KEY:
            raise AuthenticationFailed(
                f"This organization authenticates inbound webhooks with HMAC signatures: send "
                f"{SIGNATURE_HEADER} instead of an API key."
            )
        return None, organization

    def authenticate_header(self, request):
        return "Bearer"


class SignatureAuthentication(BaseAuthentication):
    """An HMAC-SHA256 of the raw body by any active signing key of an hmac-mode organization.

    The view names the candidate organization with `signing_organization(request)`.
    """

    def authenticate(self, request):
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None:
            return None
        organization = request.parser_context["view"].signing_organization(request)
        if (
            organization is None
            or organization.inbound_auth_mode != Organization.InboundAuthMode.HMAC
            or not verify_signature(organization, read_body(request._request), signature)
        ):
            raise AuthenticationFailed(INVALID_SIGNATURE)
        return None, organization


class IsPartnerOrganization(BasePermission):
    """Some authenticator named the calling organization (it is `request.auth`)."""

    def has_permission(self, request, view):
        if not isinstance(request.auth, Organization):
            raise NotAuthenticated(NO_CREDENTIALS)
        return True
