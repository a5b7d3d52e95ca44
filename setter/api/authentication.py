"""Who is calling the REST API: the organization owning an active API key.

The segment API's documented header is `x-api-key: <key>`; `Authorization: Bearer <key>` works
too, as on the webhooks. Unlike the inbound webhooks, the organization's inbound mode (API key
or HMAC) does not matter here: the REST API always takes API keys.
"""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import BasePermission

from setter.models import Organization
from setter.services import authenticate_api_key, authenticate_bearer

API_KEY_HEADER = "x-api-key"


def _organization_of(api_key):
    if api_key is None:
        raise AuthenticationFailed()
    return None, api_key.organization


class XApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw_key = request.headers.get(API_KEY_HEADER)
        return None if raw_key is None else _organization_of(authenticate_api_key(raw_key.strip()))

    def authenticate_header(self, request):
        return API_KEY_HEADER


class BearerApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.headers.get("Authorization")
        return _organization_of(authenticate_bearer(header)) if header else None

    def authenticate_header(self, request):
        return "Bearer"


class IsApiOrganization(BasePermission):
    """An API key named the calling organization (it is `request.auth`)."""

    def has_permission(self, request, view):
        if not isinstance(request.auth, Organization):
            raise NotAuthenticated()
        return True
