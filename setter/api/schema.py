"""OpenAPI security schemes of the REST API: the organization's key, as a header or a bearer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .authentication import API_KEY_HEADER


class XApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "setter.api.authentication.XApiKeyAuthentication"
    name = "xApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": API_KEY_HEADER,
            "description": "Any active API key of your organization.",
        }


class BearerApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "setter.api.authentication.BearerApiKeyAuthentication"
    name = "bearerApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Any active API key of your organization, as a bearer token.",
        }
