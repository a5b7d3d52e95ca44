"""One declaration per request body: the serializer the schema publishes is the one the
server validates the body with.

Each body of the REST API and the partner webhooks is a DRF serializer declared once, in its
app's `api/contract.py` (`webhooks/serializers.py` for the partner webhooks, the
outbound endpoints' beside their views in `webhooks/outbound/api.py`). drf-spectacular
publishes it as the operation's request schema (`extend_schema(request=...)`), and the
server runs it (`validated_body`): the types, shapes and limits are the fields below, and a
key an object does not declare is refused by name, with the camelCase spelling it should
have (StrictSerializer). Two rules hold for every body and are added to every published
request schema by the hooks in setter.api.schema: no object takes a key it does not declare
(`additionalProperties: false`), and no string holds NUL (PostgreSQL cannot store it; the
server refuses it before any query, setter.api.bodies). The readers keep only what a schema
cannot say: references resolved in the organization (a template by name, a segment by id)
and the rules between fields, reading `validated_data`. Every problem is named by its place
in the body (setter.api.errors.problems).

The fields below are the JSON types exactly as the server takes them, so the schema says what
is refused: DRF's CharField would coerce 12345 to "12345", its IntegerField "42" to 42.
tests/setter/test_api_contract.py checks, for every body route, that the published schema
refuses exactly what the server refuses over mutations of a good body.

Adding a body: declare its StrictSerializer in the app's contract module with fields from
here, publish it with `extend_schema(request=TheBody)` on the view, read it with
`validated_body(request.data, TheBody)`, and give the route a good body in GOOD_BODIES of
that test.
"""

import datetime as dt

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from setter.ids import API_ID_PATTERN, MAX_ID, api_id_problem, pk_from_text
from setter.instants import in_supported_range

from .bodies import json_object, unknown_keys
from .errors import refusal


def keys(declaration, *path: str) -> tuple[str, ...]:
    """The keys the declared body may have, or those of the nested object at `path` (a
    nested serializer, or the items of a list of them): for the long lists a plain loop
    reads instead of a serializer per item (webhooks.serializers)."""
    serializer = declaration() if isinstance(declaration, type) else declaration
    for name in path:
        serializer = serializer.fields[name]
        serializer = getattr(serializer, "child", serializer)
    return tuple(serializer.fields)


def validated_body(data, declaration, *, patch: bool = False) -> dict:
    """The body validated by its declaration: `validated_data`, with only the keys given
    (and the declared defaults). A 400 names the place of every problem, up to
    MAX_REPORTED_ERRORS. `patch`: no top-level key is required, as drf-spectacular
    publishes a PATCH body (its Patched component); nested objects keep their required keys,
    which DRF's partial=True would drop too."""
    serializer = declaration(data=json_object(data))
    if patch:
        for field in serializer.fields.values():
            field.required = False
    if not serializer.is_valid():
        raise refusal(serializer.errors)
    return serializer.validated_data


def no_body(data) -> dict:
    """The body of a call that takes none: `{}`, or a 400 naming every key it holds."""
    return validated_body(data, StrictSerializer)


def _length_problem(field, data) -> str | None:
    """Too many items, said with the count: checked before any item is read."""
    if field.max_length is not None and len(data) > field.max_length:
        return field.error_messages["max_length"].format(
            max_length=field.max_length, length=len(data)
        )
    return None


LIST_MESSAGES: dict = {
    "not_a_list": "expected a list",
    "empty": "may not be empty",
    "max_length": "at most {max_length:,} items, got {length:,}",
}


class StrictListSerializer(serializers.ListSerializer):
    """The list of a `many` body serializer: a JSON array, its bound said with the count."""

    default_error_messages = LIST_MESSAGES

    def to_internal_value(self, data):
        if isinstance(data, list) and (problem := _length_problem(self, data)):
            raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [problem]})
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """A JSON object that takes the keys it declares and no other: DRF would drop an unknown
    key quietly. Each is named, a snake_case spelling with the camelCase it should have."""

    default_error_messages = {"invalid": "expected an object"}

    class Meta:
        list_serializer_class = StrictListSerializer

    @classmethod
    def many_init(cls, *args, **kwargs):
        """allow_null on a list is the list's: DRF would also let each item be null."""
        many = super().many_init(*args, **kwargs)
        assert isinstance(many, serializers.ListSerializer) and many.child is not None
        many.child.allow_null = False
        return many

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, dict):
            unknown = {key: [message] for key, message in unknown_keys(data, self.fields)}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**unknown, **exc.detail}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


# Every field below says what was wrong in the API's words ("name: expected a string"), and
# reads the JSON type exactly: DRF's own fields coerce 12345 to "12345", "42" to 42, "yes" to
# True and "1" to the choice 1.
COMMON_MESSAGES = {"required": "required", "null": "may not be null"}


def _range_message(kind: str, kwargs: dict) -> dict:
    """One message for a value out of the range or of another type, when the field has both
    bounds."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is None or high is None:
        return {}
    message = f"expected {kind} from {low} to {high}"
    return {"invalid": message, "min_value": message, "max_value": message}


class StrictCharField(serializers.CharField):
    """A JSON string, kept as given unless `trim_whitespace=True`."""

    default_error_messages = {
        **COMMON_MESSAGES,
        "invalid": "expected a string",
        "blank": "may not be empty",
        "max_length": "at most {max_length} characters, got %(show_value)s",
        "min_length": "at least {min_length} characters",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer."""

    default_error_messages = {
        **COMMON_MESSAGES,
        "invalid": "expected an integer",
        "min_value": "at least {min_value:,}",
        "max_value": "at most {max_value:,}",
    }

    def __init__(self, **kwargs):
        messages = {**_range_message("an integer", kwargs), **kwargs.get("error_messages", {})}
        super().__init__(**{**kwargs, "error_messages": messages})

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictNumberField(serializers.FloatField):
    """A JSON number: DRF's FloatField would also take "1.5"."""

    default_error_messages = {**COMMON_MESSAGES, "invalid": "expected a number"}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false."""

    default_error_messages = {**COMMON_MESSAGES, "invalid": "expected true or false"}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, of the choice's JSON type."""

    default_error_messages = {**COMMON_MESSAGES, "invalid_choice": "one of {choices}"}

    def to_internal_value(self, data):
        for choice in self.choices:
            if type(choice) is type(data) and choice == data:
                return choice
        choices = ", ".join(str(choice) for choice in self.choices)
        self.fail("invalid_choice", input=data, choices=choices)


class StrictListField(serializers.ListField):
    """A JSON array, its bound said with the count before any item is read."""

    default_error_messages = {**COMMON_MESSAGES, **LIST_MESSAGES}

    def to_internal_value(self, data):
        if isinstance(data, list) and (problem := _length_problem(self, data)):
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


class ApiIdField(StrictCharField):
    """An id a partner chooses (setter.ids); the schema publishes its pattern."""

    def __init__(self, *, numeric_allowed: bool = True, **kwargs):
        self.numeric_allowed = numeric_allowed
        super().__init__(**kwargs)
        digits_only = "" if numeric_allowed else "(?![0-9]+$)"
        self.validators.append(RegexValidator(f"^{digits_only}{API_ID_PATTERN.pattern}$"))

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if problem := api_id_problem(value, numeric_allowed=self.numeric_allowed):
            raise serializers.ValidationError(problem)
        return value


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class IdField(serializers.Field):
    """An id the server takes as a string or as an integer (lead and segment numbers), read
    as its text; `numeric=True`: a row number, read as the integer."""

    default_error_messages = {
        **COMMON_MESSAGES,
        "invalid": "expected an id (a string or an integer)",
        "not_numeric": "expected an id (a positive integer or a string of digits)",
    }

    def __init__(self, *, numeric: bool = False, **kwargs):
        self.numeric = numeric
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            self.fail("not_numeric" if self.numeric else "invalid")
        if not self.numeric:
            return str(data)
        number = pk_from_text(data) if isinstance(data, str) else data
        if number is None or not 0 <= number <= MAX_ID:
            self.fail("not_numeric")
        return number

    def to_representation(self, value):
        return value


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}]})
class TextOrNumberField(serializers.Field):
    """A text value the server also takes as a number, stored as its text (a template
    parameter, a substitution tag's value)."""

    default_error_messages = {**COMMON_MESSAGES, "invalid": "expected a string or a number"}

    def to_internal_value(self, data):
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return str(data)
        if not isinstance(data, str):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class InstantField(serializers.DateTimeField):
    """An ISO 8601 instant with its offset (or Z), in the years the product stores: DRF's
    would read one without an offset in the server's zone."""

    default_error_messages = {
        **COMMON_MESSAGES,
        "invalid": "expected an ISO 8601 instant with an offset, e.g. 2030-01-31T09:00:00Z",
        "out_of_range": "{value!r} is outside the years 1970–9000",
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                moment = dt.datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                if not in_supported_range(moment):
                    self.fail("out_of_range", value=value)
                return moment
        self.fail("invalid")


class LocalDateField(serializers.DateField):
    """A calendar date YYYY-MM-DD, as a JSON string."""

    default_error_messages = {**COMMON_MESSAGES, "invalid": "expected YYYY-MM-DD"}

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.fail("invalid")


@extend_schema_field({"type": "object"})
class FreeObjectField(serializers.JSONField):
    """A JSON object of free form (a query filter, a segment's filter): its keys are checked
    by the reader against the fields it queries, not declared here."""

    default_error_messages = {
        **COMMON_MESSAGES,
        "invalid": "expected an object",
        "empty": "expected a non-empty object",
    }

    def __init__(self, *, allow_empty: bool = True, **kwargs):
        self.allow_empty = allow_empty
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        if not data and not self.allow_empty:
            self.fail("empty")
        return data


MAX_QUERY_LIMIT = 10_000
MAX_SORT_FIELDS = 4
CURSOR_MESSAGES = {"invalid": "invalid cursor", "blank": "invalid cursor"}


class QuerySortSerializer(StrictSerializer):
    field = StrictCharField(
        error_messages=dict.fromkeys(
            ("invalid", "null", "blank"), "unknown field: expected its name"
        )
    )
    direction = StrictChoiceField(
        [1, -1], default=1, error_messages={"invalid_choice": "expected 1 or -1"}
    )


class QueryRequestSerializer(StrictSerializer):
    """The body of every `…/query` call (setter.api.querying reads it); an endpoint with
    another bound on limit declares it in a subclass."""

    filter = FreeObjectField(
        required=False, allow_null=True, help_text="See Querying in docs/api.md."
    )
    sort = StrictListSerializer(
        child=QuerySortSerializer(),
        required=False,
        allow_null=True,
        max_length=MAX_SORT_FIELDS,
        error_messages={
            "not_a_list": "expected a list of {{field, direction}} objects",
            "max_length": "at most {max_length} fields",
        },
    )
    limit = StrictIntegerField(required=False, max_value=MAX_QUERY_LIMIT, min_value=1)
    next = StrictCharField(
        required=False,
        allow_null=True,
        error_messages=CURSOR_MESSAGES,
        help_text="An answer's next: the page after.",
    )
    prev = StrictCharField(
        required=False,
        allow_null=True,
        error_messages=CURSOR_MESSAGES,
        help_text="An answer's prev: the page before (not with next).",
    )
