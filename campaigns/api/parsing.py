"""Reading a campaign body (create or update) into unsaved models and resolved references.

The keys each object of a body may have are those campaigns.api.contract declares (the
schema's source too); this reader resolves what a schema cannot (templates, segments, leads
and the sender, in the organization) and the rules between fields. Every problem names its
place in the body (`sends[1].template: ...`); all of them are collected and reported
together, up to a bound, so a partner fixes a payload in one round.
Nothing here writes: campaigns.api.services does, once the whole body is known to be good.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import cast

from django.core.exceptions import ValidationError

from audiences.models import Audience, Lead
from audiences.selectors import variable_names
from campaigns import selectors, services
from campaigns.models import Campaign, Send
from campaigns.rendering import (
    API_PARAMETER_KEYS,
    api_parameters,
    parameter_problem,
    stored_parameter,
)
from messaging.models import (
    Category,
    MessageTemplate,
    ParameterSlot,
    ProductPolicy,
    WhatsAppNumber,
)
from messaging.time_zones import organization_time_zone
from setter.api.bodies import object_body, unknown_key_errors
from setter.api.contract import keys
from setter.api.errors import BadRequest
from setter.ids import api_id_problem, pk_from_text
from setter.instants import in_supported_range
from setter.models import Organization

from .contract import (
    LOCAL_TIME_PATTERN,
    MAX_LEADS,
    MAX_NAME_LENGTH,
    MAX_SEGMENTS,
    MAX_SENDS,
    MAX_START_OFFSET_MINUTES,
    CampaignBodySerializer,
    DuplicateBodySerializer,
)

MAX_REPORTED_ERRORS = 20
SCHEDULE_FIELDS = {
    "scheduledFor": "an instant",
    "localDate": "a local date, time and zone",
    "startOffsetMinutes": "minutes after the campaign's start",
}
# Where the send validator's model fields sit in a send of the body.
SEND_FIELD_PATHS = {
    "local_date": "schedule",
    "local_time": "schedule",
    "time_zone": "schedule.timeZone",
    "template": "template",
    "parameter_mapping": "parameters",
    "event_filter_type": "eventFilter.eventType",
    "event_filter_mode": "eventFilter.mode",
    "event_filter_within_minutes": "eventFilter.within.minutes",
}
CAMPAIGN_KEYS = keys(CampaignBodySerializer)
SEND_KEYS = keys(CampaignBodySerializer, "sends")
SCHEDULE_KEYS = keys(CampaignBodySerializer, "sends", "schedule")
# Seed 001's event filter: {"mode", "eventType", "within": {"minutes": n}}.
EVENT_FILTER_KEYS = keys(CampaignBodySerializer, "sends", "eventFilter")
WITHIN_KEYS = keys(CampaignBodySerializer, "sends", "eventFilter", "within")
DUPLICATE_KEYS = keys(DuplicateBodySerializer)


@dataclass
class CampaignChanges:
    """What a body sets: campaign fields, its audiences or leads, and its sends (if given)."""

    api_id: str | None = None
    fields: dict = field(default_factory=dict)
    audiences: list[Audience] | None = None
    lead_ids: list[int] | None = None
    sends: list[Send] | None = None


def parse_instant(value, path: str, errors: list[str]) -> dt.datetime | None:
    """An ISO 8601 instant with its offset (or Z)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            if in_supported_range(moment):
                return moment
            errors.append(f"{path}: {value!r} is outside the years 1970–9000")
            return None
    errors.append(f"{path}: expected an ISO 8601 instant with an offset, e.g. 2030-01-31T09:00:00Z")
    return None


def campaign_changes(
    data, organization: Organization, *, campaign: Campaign | None = None
) -> CampaignChanges:
    """The changes a create body (campaign None) or an update body (the campaign) asks for;
    BadRequest naming every problem's place otherwise."""
    data = object_body(data, CAMPAIGN_KEYS)
    creating = campaign is None
    reader = _Reader(data, organization, creating)
    changes = reader.read()
    if not reader.errors and changes.sends is not None:
        # Sends are checked against the campaign they will belong to (its organization) and
        # the leads they will reach (the variables their parameters may name).
        owner = campaign or Campaign(organization=organization)
        variables = _target_variables(changes, campaign)
        for index, send in enumerate(changes.sends):
            reader.check_send(send, owner, f"sends[{index}]", variables)
    if reader.errors:
        raise BadRequest("; ".join(reader.errors[:MAX_REPORTED_ERRORS]))
    return changes


class _Reader:
    def __init__(self, data: dict, organization: Organization | None, creating: bool):
        self.data, self.organization, self.creating = data, organization, creating
        self.errors: list[str] = []
        self._zone: str | None = None

    @property
    def zone(self) -> str:
        """The zone a send that names none is in: the organization's, as in the admin."""
        if self._zone is None:
            assert self.organization is not None  # only a duplicate body has none, and no sends
            self._zone = organization_time_zone(self.organization)
        return self._zone

    def read(self) -> CampaignChanges:
        data, changes = self.data, CampaignChanges()
        if "id" in data:
            if self.creating:
                changes.api_id = self._api_id(data["id"])
            else:
                self.errors.append("id: cannot be changed")
        if "name" in data or self.creating:
            # Seed 003: the name is optional; the service names an unnamed campaign.
            name = self._text("name", MAX_NAME_LENGTH).strip()
            if not name and not self.creating:
                self.errors.append("name: may not be empty")
            changes.fields["name"] = name
        if "description" in data:
            changes.fields["description"] = self._text("description", None)
        if "senderId" in data or self.creating:
            changes.fields["whatsapp_number"] = self._number(data.get("senderId"))
        if "productPolicyConfirmed" in data:
            value = data["productPolicyConfirmed"]
            if not isinstance(value, bool):
                self.errors.append("productPolicyConfirmed: expected true or false")
            changes.fields["product_policy_confirmed"] = value is True
        if "productPolicy" in data:
            value = data["productPolicy"]
            if value not in ProductPolicy.values:
                self.errors.append(f"productPolicy: one of {', '.join(ProductPolicy.values)}")
            changes.fields["product_policy"] = value
        if "stopAt" in data:
            changes.fields["stop_at"] = parse_instant(data["stopAt"], "stopAt", self.errors)
        self._targets(changes)
        if "sends" in data or self.creating:
            changes.sends = self._sends(data.get("sends"))
        return changes

    # --- Campaign fields ----------------------------------------------------------------

    def _text(self, key: str, limit: int | None) -> str:
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.errors.append(f"{key}: expected a string")
            return ""
        if limit is not None and len(value) > limit:
            self.errors.append(f"{key}: at most {limit} characters, got {len(value)}")
            return ""
        return value

    def _api_id(self, value) -> str | None:
        if value is None:
            return None
        problem = api_id_problem(value)
        if problem:
            self.errors.append(f"id: {problem}")
            return None
        return value

    def _number(self, sender_id) -> WhatsAppNumber | None:
        if not isinstance(sender_id, str) or not sender_id:
            self.errors.append("senderId: required: the phone_number_id of one of your numbers")
            return None
        number = WhatsAppNumber.objects.filter(
            organization=self.organization, phone_number_id=sender_id
        ).first()
        if number is None:
            self.errors.append(f"senderId: no WhatsApp number of yours has id {sender_id!r}")
        return number

    def _targets(self, changes: CampaignChanges) -> None:
        """segmentIds, or userIds / leadIds (the same thing): exactly one of them (null is
        the same as absent)."""
        keys = ("segmentIds", "userIds", "leadIds")
        given = [key for key in keys if self.data.get(key) is not None]
        if len(given) > 1:
            self.errors.append(f"{' and '.join(given)}: give only one of them")
            return
        if not given:
            if self.creating:
                self.errors.append("segmentIds: required (or userIds / leadIds)")
            return
        key = given[0]
        if key == "segmentIds":
            changes.audiences = self._segments(self.data[key])
        else:
            changes.lead_ids = self._leads(key, self.data[key])

    def _id_list(self, key: str, values, limit: int) -> list[tuple[str, int]]:
        """Distinct (id, index) pairs in the order given; ids may be strings or integers."""
        if not isinstance(values, list) or not values:
            self.errors.append(f"{key}: expected a non-empty list of ids")
            return []
        if len(values) > limit:
            self.errors.append(f"{key}: at most {limit:,} ids, got {len(values):,}")
            return []
        ids: dict[str, int] = {}
        for index, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                self.errors.append(f"{key}[{index}]: expected a string id")
            else:
                ids.setdefault(str(value), index)
        return list(ids.items())

    def _segments(self, values) -> list[Audience]:
        ids = self._id_list("segmentIds", values, MAX_SEGMENTS)
        known = _segments_by_id(Audience.objects.filter(organization=self.organization), ids)
        for value, index in ids:
            if value not in known:
                self.errors.append(f"segmentIds[{index}]: no segment {value!r}")
        return [known[value] for value, _ in ids if value in known]

    def _leads(self, key: str, values) -> list[int]:
        ids = self._id_list(key, values, MAX_LEADS)
        known = _by_pk(Lead.objects.filter(organization=self.organization).only("pk"), ids)
        for value, index in ids:
            if value not in known:
                self.errors.append(f"{key}[{index}]: no lead {value!r}")
        return [known[value].pk for value, _ in ids if value in known]

    # --- Sends --------------------------------------------------------------------------

    def _sends(self, values) -> list[Send]:
        if not isinstance(values, list) or not values:
            self.errors.append("sends: expected a non-empty list of sends")
            return []
        if len(values) > MAX_SENDS:
            self.errors.append(f"sends: at most {MAX_SENDS}, got {len(values)}")
            return []
        sends = [self._send(value, f"sends[{index}]") for index, value in enumerate(values)]
        # A None comes with its error in self.errors, and a body with errors is refused before
        # its sends are read (campaign_changes), so the callers only see sends.
        return cast(list[Send], sends)

    def _send(self, data, path: str) -> Send | None:
        """An unsaved send; its position is given when it is saved (after the last one)."""
        if not isinstance(data, dict):
            self.errors.append(f"{path}: expected an object")
            return None
        errors = self.errors
        errors += unknown_key_errors(data, SEND_KEYS, path)
        send = Send()
        name = data.get("name") or ""
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
            errors.append(f"{path}.name: expected a string of at most {MAX_NAME_LENGTH} characters")
        else:
            send.name = name
        template = self._template(data, path)
        if template is not None:
            send.template = template
        category = data.get("category")
        if category is None:
            send.category = template.category if template else Category.MARKETING
        elif category in Category.values:
            send.category = category
        else:
            errors.append(f"{path}.category: one of {', '.join(Category.values)}")
        given = {
            component: self._parameters(data.get(key, []), f"{path}.{key}")
            for component, key in API_PARAMETER_KEYS.items()
        }
        if template is not None:
            self._parameter_counts(template, given, path)
        send.parameter_mapping = [entry for entries in given.values() for entry in entries or []]
        self._schedule(send, data.get("schedule"), f"{path}.schedule")
        rate = data.get("maxMessagesPerSecond", 20)
        if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 1000:
            errors.append(f"{path}.maxMessagesPerSecond: an integer from 1 to 1000")
        else:
            send.max_messages_per_second = rate
        audience_filter = data.get("audienceFilter", Send.AudienceFilterMode.OFF)
        if audience_filter not in Send.AudienceFilterMode.values:
            errors.append(
                f"{path}.audienceFilter: one of {', '.join(Send.AudienceFilterMode.values)}"
            )
        else:
            send.audience_filter_mode = audience_filter
        self._event_filter(send, data.get("eventFilter"), f"{path}.eventFilter")
        return send

    def _template(self, data: dict, path: str) -> MessageTemplate | None:
        name, language = data.get("template"), data.get("language")
        if not isinstance(name, str) or not name:
            self.errors.append(f"{path}.template: required: the name of one of your templates")
            return None
        if language is not None and not isinstance(language, str):
            self.errors.append(f"{path}.language: expected a language code such as en_US")
            return None
        templates = MessageTemplate.objects.filter(organization=self.organization, name=name)
        if language:
            templates = templates.filter(language=language)
        found = list(templates[:5])
        if not found:
            where = f" in {language}" if language else ""
            self.errors.append(f"{path}.template: no template {name!r}{where}")
            return None
        if len(found) > 1:
            languages = ", ".join(sorted(t.language for t in found))
            self.errors.append(
                f"{path}.language: template {name!r} exists in {languages}: name the language"
            )
            return None
        return found[0]

    def _parameters(self, values, path: str) -> list[str] | None:
        """The stored entries of one parameter list; None (reported) when it is no list."""
        if not isinstance(values, list):
            self.errors.append(f"{path}: expected a list of strings")
            return None
        mapping = []
        for index, value in enumerate(values):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            problem = "expected a string" if not isinstance(value, str) else None
            entry = stored_parameter(value) if problem is None else ""
            problem = problem or parameter_problem(entry)
            if problem:
                self.errors.append(f"{path}[{index}]: {problem}")
            mapping.append(entry)
        return mapping

    def _parameter_counts(self, template: MessageTemplate, given: dict, path: str) -> None:
        """Each list fills exactly its component's parameters: one left out would reach Meta
        as a 132000 for every recipient, one too many has nowhere to go."""
        slots = template.parameter_slots
        for component, key in API_PARAMETER_KEYS.items():
            expected = [slot.label for slot in slots if slot.component == component]
            entries = given[component]
            if entries is None or len(entries) == len(expected):
                continue
            if component == ParameterSlot.BODY and len(expected) == len(slots):
                problem = (
                    f"The template has {len(expected)} parameter(s) but the mapping gives "
                    f"{len(entries)}."
                )
            else:
                where = {"body": "body", "header": "header", "button": "URL button"}[component]
                named = f" ({', '.join(expected)})" if expected else ""
                problem = (
                    f"The template has {len(expected)} {where} parameter(s){named} but "
                    f"{len(entries)} given."
                )
            self.errors.append(f"{path}.{key}: {problem}")

    def _schedule(self, send: Send, schedule, path: str) -> None:
        """An instant, a local time in a zone, or nothing: the campaign's start (+ offset)."""
        if schedule is None:
            schedule = {}
        if not isinstance(schedule, dict):
            self.errors.append(f"{path}: expected an object")
            return
        unknown = unknown_key_errors(schedule, SCHEDULE_KEYS, path)
        if unknown:
            self.errors += unknown
            return
        kinds = [key for key in SCHEDULE_FIELDS if key in schedule]
        if len(kinds) > 1:
            self.errors.append(
                f"{path}: give one of {', '.join(SCHEDULE_FIELDS)}, not {' and '.join(kinds)}"
            )
            return
        kind = kinds[0] if kinds else "startOffsetMinutes"
        if kind == "scheduledFor":
            instant = parse_instant(schedule["scheduledFor"], f"{path}.scheduledFor", self.errors)
            if instant is not None:
                send.local_date, send.local_time, send.time_zone = services.wall_time_in(
                    instant, self.zone
                )
        elif kind == "localDate":
            self._local_schedule(send, schedule, path)
        else:
            offset = schedule.get("startOffsetMinutes", 0)
            if (
                isinstance(offset, bool)
                or not isinstance(offset, int)
                or not 0 <= offset <= MAX_START_OFFSET_MINUTES
            ):
                self.errors.append(
                    f"{path}.startOffsetMinutes: a whole number of minutes from 0 to "
                    f"{MAX_START_OFFSET_MINUTES:,} (366 days)"
                )
                return
            # Provisional until the start fills it in: the editor needs a local time.
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            send.start_offset_minutes = offset
            send.local_date, send.local_time, send.time_zone = services.wall_time_in(now, self.zone)

    def _local_schedule(self, send: Send, schedule: dict, path: str) -> None:
        try:
            send.local_date = dt.date.fromisoformat(str(schedule.get("localDate")))
        except ValueError:
            self.errors.append(f"{path}.localDate: expected YYYY-MM-DD")
        local_time = schedule.get("localTime")
        if isinstance(local_time, str) and LOCAL_TIME_PATTERN.fullmatch(local_time):
            send.local_time = dt.time.fromisoformat(local_time)
        else:
            self.errors.append(f"{path}.localTime: a wall-clock time HH:MM or HH:MM:SS")
        zone = schedule["timeZone"] if "timeZone" in schedule else self.zone
        if not isinstance(zone, str) or not zone:
            self.errors.append(f"{path}.timeZone: an IANA zone such as Europe/London")
        else:
            send.time_zone = zone

    def _event_filter(self, send: Send, event_filter, path: str) -> None:
        """Seed 001's form exactly; the window's bound is the editor's (services.validate_send)."""
        if event_filter is None:
            return
        if not isinstance(event_filter, dict):
            self.errors.append(f"{path}: expected an object with mode, eventType and within")
            return
        unknown = unknown_key_errors(event_filter, EVENT_FILTER_KEYS, path)
        if unknown:
            self.errors += unknown
            return
        mode = event_filter.get("mode", Send.EventFilterMode.OFF)
        if mode not in Send.EventFilterMode.values:
            self.errors.append(f"{path}.mode: one of {', '.join(Send.EventFilterMode.values)}")
            return
        event_type = event_filter.get("eventType") or ""
        if not isinstance(event_type, str) or len(event_type) > 100:
            self.errors.append(f"{path}.eventType: a string of at most 100 characters")
            return
        minutes = self._within(event_filter.get("within"), f"{path}.within")
        if minutes is False:
            return
        send.event_filter_mode, send.event_filter_type = mode, event_type
        send.event_filter_within_minutes = minutes

    def _within(self, within, path: str) -> int | None | bool:
        """`{"minutes": n}`'s n, None without a window, False (reported) when malformed."""
        if within is None:
            return None
        if not isinstance(within, dict):
            self.errors.append(f'{path}: expected an object like {{"minutes": 120}}')
            return False
        unknown = unknown_key_errors(within, WITHIN_KEYS, path)
        if unknown:
            self.errors += unknown
            return False
        minutes = within.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            self.errors.append(f"{path}.minutes: required: a whole number of minutes")
            return False
        return minutes

    def check_send(
        self, send: Send, campaign: Campaign, path: str, variables: set[str] | None
    ) -> None:
        """The editor's own checks of a send (local time, template, mapping, event filter);
        the counts were checked when the body was read."""
        places = _parameter_places(send)
        for entry, place in zip(send.parameter_mapping, places, strict=True):
            if problem := parameter_problem(entry, variables):
                self.errors.append(f"{path}.{place}: {problem}")
        try:
            services.validate_send(send, campaign, variables=variables)
        except ValidationError as error:
            for model_field, messages in error.message_dict.items():
                where = SEND_FIELD_PATHS.get(model_field, model_field)
                if model_field == "parameter_mapping":
                    continue  # reported above, entry by entry
                self.errors += [f"{path}.{where}: {message}" for message in messages]


def _parameter_places(send: Send) -> list[str]:
    """Where each entry of a send's mapping sits in its body: parameters[1],
    headerParameters[0], buttonParameters[0], …"""
    places = [""] * len(send.parameter_mapping)
    split = api_parameters(list(range(len(places))), send.template.parameter_slots)
    for key, positions in split.items():
        for index, position in enumerate(positions):
            places[position] = f"{key}[{index}]"
    return places


def _target_variables(changes: CampaignChanges, campaign: Campaign | None) -> set[str] | None:
    """The variables the leads the campaign will target have (see available_variables)."""
    if changes.lead_ids is not None:
        return variable_names(Lead.objects.filter(pk__in=changes.lead_ids))
    if changes.audiences is not None:
        return selectors.available_variables(changes.audiences)
    return selectors.available_variables(campaign.audiences.all()) if campaign else None


def _by_pk(queryset, ids: list[tuple[str, int]]) -> dict:
    """The objects among the queryset whose primary key is one of the (string) ids."""
    numeric = [pk for value, _ in ids if (pk := pk_from_text(value)) is not None]
    return {str(obj.pk): obj for obj in queryset.filter(pk__in=numeric)}


def _segments_by_id(queryset, ids: list[tuple[str, int]]) -> dict:
    """Segments by their API id: the partner's chosen one, or the number."""
    chosen = [value for value, _ in ids if pk_from_text(value) is None]
    found = _by_pk(queryset, ids)
    found |= {audience.api_id: audience for audience in queryset.filter(api_id__in=chosen)}
    return found


def duplicate_body(data) -> tuple[str, str]:
    """The copy's id and name from a duplicate call's body (both optional); 400 otherwise."""
    data = object_body(data, DUPLICATE_KEYS)
    reader = _Reader(data, organization=None, creating=True)
    api_id = reader._api_id(data.get("id")) or ""
    name = reader._text("name", MAX_NAME_LENGTH).strip()
    if "name" in data and not name and not reader.errors:
        reader.errors.append("name: may not be empty")
    if reader.errors:
        raise BadRequest("; ".join(reader.errors))
    return api_id, name
