"""`field__any`: the same rows as `field__in`, with the list sent as one array parameter."""

import pytest
from django.db import connection

from audiences.models import Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

PHONES = ["+447700900001", "+447700900002", "+447700900003"]


@pytest.fixture
def leads():
    return [LeadFactory(phone_e164=phone) for phone in PHONES]


@pytest.mark.parametrize(
    "field, values",
    [
        ("phone_e164", PHONES[:2]),
        ("phone_e164", ["+15550000000"]),
        ("phone_e164", []),
        ("phone_e164", [PHONES[0], None]),
        ("pk", "ids of the first and last"),
    ],
)
def test_any_finds_what_in_finds(leads, field, values):
    if field == "pk":
        values = [leads[0].pk, leads[-1].pk]
    found = set(Lead.objects.filter(**{f"{field}__any": values}))
    assert found == set(Lead.objects.filter(**{f"{field}__in": values}))


def test_any_sends_one_parameter_however_many_values(leads):
    values = [f"+1555{n:07d}" for n in range(500)] + PHONES
    found = Lead.objects.filter(phone_e164__any=values)
    sql, params = found.query.get_compiler(connection=connection).as_sql()
    assert params == (values,)
    assert "= ANY(%s::varchar(20)[])" in sql
    assert sorted(found.values_list("phone_e164", flat=True)) == PHONES


def test_an_update_through_any_moves_only_the_rows_named(leads):
    moved = Lead.objects.filter(pk__any=[leads[1].pk]).update(first_name="Moved")
    assert moved == 1
    assert list(Lead.objects.filter(first_name="Moved")) == [leads[1]]
