"""One declaration per request body: the serializer the schema publishes is the one the
server reads the body by.

Each body of the REST API and the partner webhooks is a DRF serializer declared once, in its
app's `api/contract.py` (`webhooks/serializers.py` for the partner webhooks, the
outbound endpoints' beside their views in `webhooks/outbound/api.py`). drf-spectacular
publishes it as the operation's request schema (`extend_schema(request=...)`), and the
server's reader takes from the same declaration the keys each object of the body may have
(`keys`): a key the declaration does not name is refused by name, with the camelCase spelling
it should have. Two rules hold for every body and are added to every published request schema
by the hooks in setter.api.schema: no object takes a key it does not declare
(`additionalProperties: false`), and no string holds NUL (PostgreSQL cannot store it; the
server refuses it before any query, setter.api.bodies). The readers keep only what a schema
cannot say: references resolved in the organization (a template by name, a segment by id)
and the rules between fields, each problem named by its place in the body.

The fields below are the JSON types exactly as the server takes them, so the schema says what
is refused: DRF's CharField would coerce 12345 to "12345", its IntegerField "42" to 42.
tests/setter/test_api_contract.py checks, for every body route, that the published schema
refuses exactly what the server refuses over mutations of a good body.

Adding a body: declare its serializer in the app's contract module (fields from here when
the JSON type is strict), publish it with `extend_schema(request=TheBody)` on the view, read
it with `declared_body(request.data, TheBody)` (or `keys(TheBody, "nested")` for a nested
object a reader walks), and give the route a good body in GOOD_BODIES of that test.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .bodies import object_body


def keys(declaration, *path: str) -> tuple[str, ...]:
    """The keys the declared body may have, or those of the nested object at `path` (a
    nested serializer, or the items of a list of them)."""
    serializer = declaration() if isinstance(declaration, type) else declaration
    for name in path:
        serializer = serializer.fields[name]
        serializer = getattr(serializer, "child", serializer)
    return tuple(serializer.fields)


def declared_body(data, declaration) -> dict:
    """The JSON object body (`{}` when there is none), refused with a 400 naming every key the
    declaration does not have, or the place of a string holding NUL."""
    return object_body(data, keys(declaration))


def no_body(data) -> dict:
    """The body of a call that takes none: `{}`, or a 400 naming every key it holds."""
    return object_body(data, ())


class StrictCharField(serializers.CharField):
    """A JSON string: DRF's CharField would also take 12345 and 1.5 as text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: DRF's IntegerField would also take "42" and 42.0."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class IdField(serializers.Field):
    """An id the server takes as a string or as an integer (lead and segment numbers)."""


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}]})
class TextOrNumberField(serializers.Field):
    """A text value the server also takes as a number, stored as its text (a template
    parameter, a substitution tag's value)."""


@extend_schema_field({"type": "object"})
class FreeObjectField(serializers.JSONField):
    """A JSON object of free form (a query filter, a segment's filter): its keys are checked
    by the reader against the fields it queries, not declared here."""


class QuerySortSerializer(serializers.Serializer):
    field = StrictCharField()
    direction = serializers.ChoiceField([1, -1], default=1)


class QueryRequestSerializer(serializers.Serializer):
    """The body of every `…/query` call (setter.api.querying reads it)."""

    filter = FreeObjectField(
        required=False, allow_null=True, help_text="See Querying in docs/api.md."
    )
    sort = QuerySortSerializer(many=True, required=False)
    limit = StrictIntegerField(required=False, max_value=10_000, min_value=1)
    next = StrictCharField(required=False, help_text="An answer's next: the page after.")
    prev = StrictCharField(
        required=False, help_text="An answer's prev: the page before (not with next)."
    )
