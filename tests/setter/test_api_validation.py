"""The declarations validate: strict fields read each JSON type exactly, a StrictSerializer
refuses keys it does not declare, and DRF's nested errors come out as the API's paths, at
most MAX_REPORTED_ERRORS of them."""

import pytest
from rest_framework import serializers

from audiences.api.contract import CreateSegmentSerializer
from setter.api.contract import (
    IdField,
    InstantField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictListField,
    StrictSerializer,
    TextOrNumberField,
    validated_body,
)
from setter.api.errors import MAX_REPORTED_ERRORS, BadRequest, error_places


class Item(StrictSerializer):
    name = StrictCharField()
    count = StrictIntegerField(required=False, min_value=1, max_value=9)


class Body(StrictSerializer):
    title = StrictCharField(max_length=5)
    items = Item(many=True, required=False)
    tags = StrictListField(child=StrictChoiceField([1, -1]), required=False)
    flag = StrictBooleanField(required=False)


def refusal(data, declaration=Body) -> str:
    with pytest.raises(BadRequest) as refused:
        validated_body(data, declaration)
    return str(refused.value.detail)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (StrictCharField(), 12345),
        (StrictIntegerField(), "42"),
        (StrictIntegerField(), 42.0),
        (StrictIntegerField(), True),
        (StrictBooleanField(), "yes"),
        (StrictBooleanField(), 1),
        (StrictChoiceField([1, -1]), "1"),
        (StrictChoiceField([1, -1]), True),
        (IdField(), True),
        (IdField(numeric=True), "12a"),
        (TextOrNumberField(), False),
        (InstantField(), "2030-01-31T09:00:00"),
    ],
)
def test_a_strict_field_refuses_what_drf_would_coerce(field, value):
    with pytest.raises(serializers.ValidationError):
        field.run_validation(value)


def test_the_values_are_read_as_declared():
    data = validated_body({"title": "  Hi ", "items": [{"name": "a"}], "tags": [-1]}, Body)

    assert data == {"title": "  Hi ", "items": [{"name": "a"}], "tags": [-1]}
    assert IdField(numeric=True).run_validation("12") == 12
    assert TextOrNumberField().run_validation(1.5) == "1.5"


def test_every_problem_is_named_by_its_place_in_the_body():
    body = {
        "title": "too long",
        "items": [{"name": "ok"}, {"count": 0}, "x"],
        "tags": [1, 2],
        "flag": "yes",
        "colour": "red",
    }

    assert refusal(body) == "; ".join(
        [
            "colour: unknown key (expected title, items, tags, flag)",
            "title: at most 5 characters, got 8",
            "items[1].name: required",
            "items[1].count: expected an integer from 1 to 9",
            "items[2]: expected an object",
            "tags[1]: one of 1, -1",
            "flag: expected true or false",
        ]
    )


def test_a_snake_case_key_is_told_its_camel_case_spelling():
    class Start(StrictSerializer):
        scheduledFor = StrictCharField(required=False)

    assert refusal({"scheduled_for": "x"}, Start) == (
        "scheduled_for: unknown key: did you mean scheduledFor?"
    )


def test_the_problems_reported_are_bounded():
    persons = [{"phone": 447400123456} for _ in range(10_000)]

    message = refusal({"name": "VIP", "persons": persons}, CreateSegmentSerializer)

    assert message.count(": expected a string") == MAX_REPORTED_ERRORS
    assert message.startswith("persons[0].phone: expected a string; persons[1].phone")


def test_error_places_reads_drf_nested_errors():
    detail = {
        "non_field_errors": ["whole body"],
        "a": ["bad"],
        "b": [{}, {"c": ["worse"]}],
        "d": {3: ["third"]},
    }

    assert list(error_places(detail)) == [
        ("", "whole body"),
        ("a", "bad"),
        ("b[1].c", "worse"),
        ("d[3]", "third"),
    ]
