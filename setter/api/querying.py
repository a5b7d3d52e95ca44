"""The query language of the REST API: Mongo-style filters, sorts and keyset cursors.

A query body is `{"filter": {...}, "sort": [{"field", "direction"}], "limit": n, "next": "..."}`
(seed 003's queryCampaigns / querySegments / queryTargets). Filters compile to ORM `Q` objects,
so the database evaluates them; nothing is ever matched row by row in Python. Every error is a
`BadRequest` whose message names its place in the body, e.g.
`filter.$or[1].created_at.$foo: unknown operator (expected one of $eq, ...)`.

Filter semantics, chosen to match what a Mongo user expects:

* `{"name": "x"}` is `{"name": {"$eq": "x"}}`; several fields in one object, or several
  operators on one field, must all hold (AND); `$and` / `$or` take non-empty lists of filters.
* `$ne` and `$nin` also match rows where the field is missing (a JSON key the row does not
  have, a NULL column, a multi-valued relation with no members) — as in MongoDB, they are
  exactly the negation of `$eq` / `$in`. (An empty text column is the value "", so
  `{"$ne": "x"}` matches it and `{"$ne": ""}` does not.)
* `$exists: true` matches rows where the field has a value: not NULL, not the empty string for
  text fields, the key present for JSON sub-keys, at least one member for relations.
  `{"$eq": null}` is `$exists: false` and `{"$ne": null}` is `$exists: true`.
* `$gt` / `$gte` / `$lt` / `$lte` compare as the column does: numbers and ids numerically,
  datetimes in time, text by the database's collation, JSON sub-keys as JSON values (a string
  "30" is not the number 30).
* Fields with `values` (enumerations like a campaign's status) take only the listed API values;
  an API value may stand for several stored ones.
"""

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import phonenumbers
import pycountry
from django.core import signing
from django.db.models import BooleanField, Exists, Expression, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError

from setter.instants import in_supported_range

from .bodies import camel_case, snake_case
from .contract import IdField, QueryRequestSerializer, validated_body
from .errors import BadRequest

COMPARISONS = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
FIELD_OPERATORS = ("$eq", "$ne", "$in", "$nin", *COMPARISONS, "$exists")
LOGICAL_OPERATORS = ("$and", "$or")
KINDS = ("text", "number", "datetime", "bool", "id", "json", "many", "country")
# Operators that make sense on each kind (enumerations, i.e. fields with `values`, as bool).
UNORDERED_OPERATORS = ("$eq", "$ne", "$in", "$nin", "$exists")
MAX_FILTER_DEPTH = 8
MAX_FILTER_CONDITIONS = 200
MAX_IN_VALUES = 10_000
CURSOR_SALT = "setter.api.cursor"


@dataclass(frozen=True)
class FilterField:
    """One filterable API field: the ORM path from the queried model and how to read values.

    kind: "text", "number", "datetime" (ISO 8601 strings), "bool", "id" (an integer pk, as
    a string or a number), "json" (the filter may name sub-keys: `variables.tier`), "many" (a
    multi-valued relation matched on the related ids; compiled to EXISTS so rows never repeat),
    "country" (an ISO 3166-1 alpha-2 or alpha-3 code, `GB` or `USA`, matched as alpha-2).
    values: API value → stored value(s), for enumerations.
    """

    lookup: str
    kind: str
    values: dict[str, str | list[str]] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown filter kind {self.kind!r}")


def both_cases(fields: dict[str, Any]) -> dict[str, Any]:
    """The same mapping reachable by snake_case and camelCase names (`created_at`/`createdAt`)."""
    aliased: dict[str, Any] = {}
    for name, value in fields.items():
        for alias in (name, snake_case(name), camel_case(name)):
            aliased.setdefault(alias, value)
    return aliased


# ---------------------------------------------------------------------------------------------
# Filters


def compile_filter(filter_obj, fields: dict[str, FilterField], *, where: str = "filter") -> Q:
    """The filter as a Q over the queried model; `Q()` (everything) for None or `{}`."""
    if filter_obj is None:
        return Q()
    return _Compiler(fields).filter(filter_obj, where, depth=0)


class _Compiler:
    def __init__(self, fields: dict[str, FilterField]):
        self.fields = fields
        self.conditions = 0

    def filter(self, obj, where: str, depth: int) -> Q:
        if not isinstance(obj, dict):
            raise BadRequest(f"{where}: expected an object")
        if depth > MAX_FILTER_DEPTH:
            raise BadRequest(f"{where}: filters nest at most {MAX_FILTER_DEPTH} levels deep")
        q = Q()
        for key, value in obj.items():
            place = f"{where}.{key}"
            if key in LOGICAL_OPERATORS:
                q &= self.logical(key, value, place, depth)
            elif key.startswith("$"):
                raise BadRequest(
                    f"{place}: unknown operator (expected a field or one of "
                    f"{', '.join(LOGICAL_OPERATORS)})"
                )
            else:
                q &= self.field(key, value, place)
        return q

    def logical(self, operator: str, value, where: str, depth: int) -> Q:
        if not isinstance(value, list) or not value:
            raise BadRequest(f"{where}: expected a non-empty list of filters")
        parts = [self.filter(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        combined = parts[0]
        for part in parts[1:]:
            combined = (combined & part) if operator == "$and" else (combined | part)
        return combined

    def field(self, name: str, condition, where: str) -> Q:
        field, lookup = self.resolve(name, where)
        if not (
            isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)
        ):
            return self.operator(field, lookup, "$eq", condition, where)
        q = Q()
        for operator, value in condition.items():
            q &= self.operator(field, lookup, operator, value, f"{where}.{operator}")
        return q

    def resolve(self, name: str, where: str) -> tuple[FilterField, str]:
        """The field and its ORM lookup; `variables.tier` reaches sub-keys of a json field."""
        if name in self.fields:
            return self.fields[name], self.fields[name].lookup
        head, _, rest = name.partition(".")
        field = self.fields.get(head)
        if field is not None and field.kind == "json" and rest:
            keys = rest.split(".")
            if any(not key or "__" in key for key in keys):
                raise BadRequest(f"{where}: invalid key (sub-keys are non-empty, without '__')")
            return field, "__".join([field.lookup, *keys])
        if field is not None and rest:
            raise BadRequest(f"{where}: {head} has no sub-keys")
        raise BadRequest(
            f"{where}: unknown field (expected one of {', '.join(sorted(self.fields))})"
        )

    def operator(self, field: FilterField, lookup: str, operator: str, value, where: str) -> Q:
        self.conditions += 1
        if self.conditions > MAX_FILTER_CONDITIONS:
            raise BadRequest(f"{where}: a filter has at most {MAX_FILTER_CONDITIONS} conditions")
        unordered = field.values or field.kind in ("bool", "many", "country")
        allowed = UNORDERED_OPERATORS if unordered else None
        if operator not in FIELD_OPERATORS or (allowed and operator not in allowed):
            expected = allowed or FIELD_OPERATORS
            raise BadRequest(f"{where}: unknown operator (expected one of {', '.join(expected)})")
        if operator == "$exists":
            if not isinstance(value, bool):
                raise BadRequest(f"{where}: expected true or false")
            present = _present(field, lookup)
            return present if value else ~present
        if operator in ("$eq", "$ne") and value is None:
            present = _present(field, lookup)
            return ~present if operator == "$eq" else present
        if operator in ("$in", "$nin"):
            if not isinstance(value, list):
                raise BadRequest(f"{where}: expected a list")
            if len(value) > MAX_IN_VALUES:
                raise BadRequest(f"{where}: at most {MAX_IN_VALUES:,} values, got {len(value):,}")
            values = []
            for index, item in enumerate(value):
                values.extend(self.values(field, item, f"{where}[{index}]"))
            matches = _match(field, lookup, "in", values)
            return matches if operator == "$in" else _negate(field, lookup, matches)
        values = self.values(field, value, where)
        if operator in ("$eq", "$ne"):
            if len(values) == 1:
                matches = _match(field, lookup, "exact", values[0])
            else:
                matches = _match(field, lookup, "in", values)
            return matches if operator == "$eq" else _negate(field, lookup, matches)
        return _match(field, lookup, COMPARISONS[operator], values[0])

    def values(self, field: FilterField, value, where: str) -> list:
        """The stored value(s) an API value stands for; several for some enumerations."""
        if field.values is not None:
            if not isinstance(value, str) or value not in field.values:
                raise BadRequest(
                    f"{where}: unknown value {value!r} (expected one of {', '.join(field.values)})"
                )
            stored = field.values[value]
            return list(stored) if isinstance(stored, list | tuple) else [stored]
        return [_value(field.kind, value, where)]


def _value(kind: str, value, where: str):
    if kind == "text":
        if not isinstance(value, str):
            raise BadRequest(f"{where}: expected a string")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{where}: expected a number")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadRequest(f"{where}: expected true or false")
        return value
    if kind in ("id", "many"):
        return parse_id(value, where)
    if kind == "datetime":
        return parse_instant(value, where)
    if kind == "country":
        return parse_country(value, where)
    # json: any JSON scalar, compared as a JSON value.
    if not isinstance(value, str | int | float | bool):
        raise BadRequest(f"{where}: expected a string, number or boolean")
    return value


def parse_id(value, where: str) -> int:
    """An integer id given as a number or a string of digits, as a body's ids are read."""
    try:
        return IdField(numeric=True).run_validation(value)
    except ValidationError as exc:
        raise BadRequest(f"{where}: {IdField.default_error_messages['not_numeric']}") from exc


@functools.cache
def _alpha_2_codes() -> dict[str, str]:
    """Every ISO 3166-1 alpha-2 and alpha-3 code → alpha-2, plus libphonenumber's regions
    (e.g. XK), which are what a lead's region holds."""
    codes = {region: region for region in phonenumbers.SUPPORTED_REGIONS}
    for country in pycountry.countries:
        codes[country.alpha_2] = codes[country.alpha_3] = country.alpha_2
    return codes


def parse_country(value, where: str) -> str:
    """A country code as a lead's region stores it; anything else refused, never an empty
    match."""
    code = _alpha_2_codes().get(value.upper()) if isinstance(value, str) else None
    if code is None:
        raise BadRequest(
            f"{where}: expected an ISO 3166 country code like GB or USA, got {value!r}"
        )
    return code


def parse_instant(value, where: str) -> dt.datetime:
    """An ISO 8601 date-time (UTC when it has no offset) or a date (its midnight UTC)."""
    parsed = None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
            if parsed is None and (day := parse_date(value.strip())) is not None:
                parsed = dt.datetime.combine(day, dt.time())
        except ValueError:
            parsed = None
    if parsed is None:
        raise BadRequest(
            f"{where}: expected an ISO 8601 date-time like 2020-01-01T00:00:00Z, got {value!r}"
        )
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    if not in_supported_range(parsed):
        raise BadRequest(f"{where}: {value!r} is outside the years 1970–9000")
    return parsed


def _match(field: FilterField, lookup: str, op: str, value) -> Q:
    if field.kind == "many":
        return Q(_RelatedExists({f"{lookup}__{op}": value}))
    return Q(**{f"{lookup}__{op}": value})


def _negate(field: FilterField, lookup: str, matches: Q) -> Q:
    """NOT matches, rows without the field included.

    The ORM already keeps NULL columns in a negation, and NOT EXISTS keeps relations without
    members; a JSON key the row lacks is NULL to SQL's NOT, so it is added back explicitly.
    """
    if field.kind == "json" and "__" in lookup:
        return ~matches | ~_present(field, lookup)
    return ~matches


def _present(field: FilterField, lookup: str) -> Q:
    if field.kind == "many":
        return Q(_RelatedExists({f"{lookup}__isnull": False}))
    if field.kind == "json" and "__" in lookup:
        parent, _, key = lookup.rpartition("__")
        return Q(**{f"{parent}__has_key": key})
    present = Q(**{f"{lookup}__isnull": False})
    if field.kind == "text":
        present &= ~Q(**{f"{lookup}__exact": ""})
    return present


class _RelatedExists(Expression):
    """EXISTS over the queried model's own rows joined through a multi-valued relation.

    Built when the Q is applied to a queryset (the model is known only then), so a row with
    several matching related rows still appears once.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, condition: dict):
        super().__init__()
        self.condition = condition

    def resolve_expression(self, query=None, *args, **kwargs):
        related = query.model._base_manager.filter(pk=OuterRef("pk"), **self.condition)
        return Exists(related).resolve_expression(query, *args, **kwargs)

    def __eq__(self, other):
        return isinstance(other, _RelatedExists) and other.condition == self.condition

    def __hash__(self):
        return hash(tuple(sorted((k, repr(v)) for k, v in self.condition.items())))


# ---------------------------------------------------------------------------------------------
# Sorting and pagination


def parse_sort(sort, sortable: dict[str, str]) -> list[tuple[str, bool]]:
    """`[{"field": "created_at", "direction": -1}]` as [(ORM lookup, descending)], its shape
    checked by QueryRequestSerializer's sort and its fields by `sortable`.

    direction is 1 (ascending, the default) or -1. An empty or absent sort is [].
    """
    sort = validated_body({"sort": sort}, QueryRequestSerializer).get("sort") or []
    order, seen = [], set()
    for index, item in enumerate(sort):
        place, name = f"sort[{index}]", item["field"]
        if name not in sortable:
            raise BadRequest(
                f"{place}.field: unknown field {name!r} (expected one of "
                f"{', '.join(sorted(sortable))})"
            )
        lookup = sortable[name]
        if lookup in seen:
            raise BadRequest(f"{place}.field: {name} is already sorted on")
        seen.add(lookup)
        order.append((lookup, item["direction"] == -1))
    return order


@dataclass(frozen=True)
class QueryBody:
    filter: dict | None
    sort: Any
    limit: int
    cursor: "Cursor | None"


@dataclass(frozen=True)
class Cursor:
    """A page boundary from an earlier answer: `next` reads on after it, `prev` back before it."""

    token: str
    backwards: bool


def query_from_body(
    data,
    declaration: type[QueryRequestSerializer] = QueryRequestSerializer,
    *,
    default_limit: int = 25,
) -> QueryBody:
    """The filter, sort, limit and cursor of a query body, validated by the endpoint's
    declaration; `{}` (or no body) is the first page of everything, `default_limit` long
    unless the declaration says otherwise. `filter` and `sort` are returned for
    compile_filter and parse_sort."""
    data = validated_body(data, declaration)
    given = [key for key in ("next", "prev") if data.get(key) is not None]
    if len(given) > 1:
        raise BadRequest("next and prev: give only one of them")
    cursor = Cursor(data[given[0]], backwards=given[0] == "prev") if given else None
    limit = data.get("limit", default_limit)
    return QueryBody(data.get("filter"), data.get("sort"), limit, cursor)


@dataclass(frozen=True)
class Page:
    items: list
    next: str | None
    prev: str | None = None


def paginate(
    queryset: QuerySet,
    order: list[tuple[str, bool]],
    *,
    limit: int,
    cursor: "Cursor | str | None",
    scope: str = "",
) -> Page:
    """One page of the queryset in `order` (from parse_sort), after a `next` cursor's position
    or before a `prev` cursor's.

    Keyset pagination: a cursor holds a boundary row's sort values and pk (the tiebreaker), so
    pages never repeat or skip rows, even when rows are added between calls; rows added
    beyond the position are simply not seen. NULLs sort after every value going up (before,
    going down). `prev` is null on the first page, `next` on the last. A cursor is signed and
    bound to the model, the order and `scope` (e.g. the segment whose targets are listed):
    replayed anywhere else it is `next: invalid cursor`. Works on model querysets and values()
    querysets.
    """
    pk_name = queryset.model._meta.pk.name
    keys = [(lookup, descending) for lookup, descending in order if lookup not in ("pk", pk_name)]
    tiebreak_descending = next(
        (descending for lookup, descending in order if lookup in ("pk", pk_name)), False
    )
    keys.append(("pk", tiebreak_descending))
    # Only the order matters for binding; positions of unrelated pk aliases do not.
    binding = [queryset.model._meta.label, scope, [[lookup, desc] for lookup, desc in keys]]
    aliases = {f"_cursor_{i}": F(lookup) for i, (lookup, _) in enumerate(keys)}
    if isinstance(cursor, str):
        cursor = Cursor(cursor, backwards=False)
    backwards = cursor is not None and cursor.backwards
    # Reading back is reading the reversed order forward, then turning the page round.
    walk = [(lookup, descending != backwards) for lookup, descending in keys]
    queryset = queryset.annotate(**aliases).order_by(
        *(
            F(alias).desc(nulls_first=True) if descending else F(alias).asc(nulls_last=True)
            for alias, (_, descending) in zip(aliases, walk, strict=True)
        )
    )
    if cursor is not None:
        where = "prev" if backwards else "next"
        position = _read_cursor(cursor.token, binding, where)
        queryset = queryset.filter(_after(list(aliases), walk, position))
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    before = more if backwards else cursor is not None
    after = cursor is not None if backwards else more

    def boundary(row):
        values = [_encode(_get(row, alias)) for alias in aliases]
        return signing.dumps([binding, values], salt=CURSOR_SALT)

    page = Page(
        rows,
        next=boundary(rows[-1]) if rows and after else None,
        prev=boundary(rows[0]) if rows and before else None,
    )
    for row in rows:
        for alias in aliases:
            if isinstance(row, dict):
                del row[alias]
            else:
                delattr(row, alias)
    return page


def _get(row, alias: str):
    return row[alias] if isinstance(row, dict) else getattr(row, alias)


def _after(aliases: list[str], keys: list[tuple[str, bool]], position: list) -> Q:
    """Rows strictly after the position in the order: (a > x) or (a = x and b > y) or …"""
    after, equal_so_far = Q(pk__in=[]), Q()
    for alias, (_, descending), value in zip(aliases, keys, position, strict=True):
        after |= equal_so_far & _beyond(alias, descending, value)
        equal_so_far &= Q(**{f"{alias}__isnull": True}) if value is None else Q(**{alias: value})
    return after


def _beyond(alias: str, descending: bool, value) -> Q:
    if value is None:  # NULLs come last going up, first going down.
        return Q(pk__in=[]) if not descending else Q(**{f"{alias}__isnull": False})
    if descending:
        return Q(**{f"{alias}__lt": value})
    return Q(**{f"{alias}__gt": value}) | Q(**{f"{alias}__isnull": True})


def _encode(value):
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    return value


def _decode(value):
    if isinstance(value, dict) and value.keys() == {"t"}:
        return dt.datetime.fromisoformat(value["t"])
    if isinstance(value, dict) and value.keys() == {"d"}:
        return dt.date.fromisoformat(value["d"])
    return value


def _read_cursor(cursor: str, binding: list, where: str) -> list:
    try:
        bound, values = signing.loads(cursor, salt=CURSOR_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadRequest(f"{where}: invalid cursor") from exc
    if bound != binding or len(values) != len(binding[2]):
        raise BadRequest(f"{where}: invalid cursor (it belongs to another query or sort)")
    try:
        return [_decode(value) for value in values]
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{where}: invalid cursor") from exc
