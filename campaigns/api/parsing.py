"""Reading a campaign body (create or update) into unsaved models and resolved references.

campaigns.api.contract validates the body (types, shapes, limits, the keys of every object;
the schema's source too); this reader takes its `validated_data` and resolves what a schema
cannot (templates, segments, leads and the sender, in the organization) and the rules
between fields. Every problem names its place in the body (`sends[1].template: ...`); all of
them are collected and reported together, up to a bound, so a partner fixes a payload in one
round. Nothing here writes: campaigns.api.services does, once the whole body is known to be
good.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from audiences.models import Audience, Lead
from audiences.selectors import variable_names
from campaigns import selectors, services
from campaigns.models import Campaign, Send
from campaigns.rendering import API_PARAMETER_KEYS, api_parameters, parameter_problem
from messaging.models import Category, MessageTemplate, ParameterSlot, WhatsAppNumber
from messaging.time_zones import organization_time_zone
from setter.api.contract import validated_body
from setter.api.errors import MAX_REPORTED_ERRORS, BadRequest
from setter.ids import pk_from_text
from setter.models import Organization

from .contract import CampaignBodySerializer, DuplicateBodySerializer
from .send_windows import window_fields, window_problem_paths

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
TARGET_KEYS = ("segmentIds", "userIds", "leadIds")


@dataclass
class CampaignChanges:
    """What a body sets: campaign fields, its audiences or leads, and its sends (if given)."""

    api_id: str | None = None
    fields: dict = field(default_factory=dict)
    audiences: list[Audience] | None = None
    lead_ids: list[int] | None = None
    sends: list[Send] | None = None


def campaign_changes(
    data, organization: Organization, *, campaign: Campaign | None = None
) -> CampaignChanges:
    """The changes a create body (campaign None) or an update body (the campaign) asks for;
    BadRequest naming every problem's place otherwise."""
    creating = campaign is None
    data = validated_body(data, CampaignBodySerializer, patch=not creating)
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
    def __init__(self, data: dict, organization: Organization, creating: bool):
        self.data, self.organization, self.creating = data, organization, creating
        self.errors: list[str] = []
        self._zone: str | None = None

    @property
    def zone(self) -> str:
        """The zone a send that names none is in: the organization's, as in the admin."""
        if self._zone is None:
            self._zone = organization_time_zone(self.organization)
        return self._zone

    def read(self) -> CampaignChanges:
        data, changes = self.data, CampaignChanges()
        if "id" in data:
            if self.creating:
                changes.api_id = data["id"]
            else:
                self.errors.append("id: cannot be changed")
        if "name" in data or self.creating:
            # Seed 003: the name is optional; the service names an unnamed campaign.
            name = data.get("name") or ""
            if not name and not self.creating:
                self.errors.append("name: may not be empty")
            changes.fields["name"] = name
        if "description" in data:
            changes.fields["description"] = data["description"] or ""
        if "senderId" in data:
            changes.fields["whatsapp_number"] = self._number(data["senderId"])
        if "productPolicyConfirmed" in data:
            changes.fields["product_policy_confirmed"] = data["productPolicyConfirmed"]
        if "productPolicy" in data:
            changes.fields["product_policy"] = data["productPolicy"]
        if "stopAt" in data:
            changes.fields["stop_at"] = data["stopAt"]
        if "sendWindow" in data:
            # The campaign is saved without a model clean: the window's rule is checked here.
            window = window_fields(data["sendWindow"])
            changes.fields.update(window)
            self.errors += window_problem_paths(window, "sendWindow")
        self._targets(changes)
        if "sends" in data:
            changes.sends = [
                self._send(send, f"sends[{index}]") for index, send in enumerate(data["sends"])
            ]
        return changes

    # --- Campaign fields ----------------------------------------------------------------

    def _number(self, sender_id: str) -> WhatsAppNumber | None:
        number = WhatsAppNumber.objects.filter(
            organization=self.organization, phone_number_id=sender_id
        ).first()
        if number is None:
            self.errors.append(f"senderId: no WhatsApp number of yours has id {sender_id!r}")
        return number

    def _targets(self, changes: CampaignChanges) -> None:
        """segmentIds, or userIds / leadIds (the same thing): exactly one of them (null is
        the same as absent)."""
        given = [key for key in TARGET_KEYS if self.data.get(key) is not None]
        if len(given) > 1:
            self.errors.append(f"{' and '.join(given)}: give only one of them")
            return
        if not given:
            if self.creating:
                self.errors.append("segmentIds: required (or userIds / leadIds)")
            return
        key = given[0]
        ids = _distinct(self.data[key])
        if key == "segmentIds":
            changes.audiences = self._segments(ids)
        else:
            changes.lead_ids = self._leads(key, ids)

    def _segments(self, ids: list[tuple[str, int]]) -> list[Audience]:
        known = _segments_by_id(Audience.objects.filter(organization=self.organization), ids)
        for value, index in ids:
            if value not in known:
                self.errors.append(f"segmentIds[{index}]: no segment {value!r}")
        return [known[value] for value, _ in ids if value in known]

    def _leads(self, key: str, ids: list[tuple[str, int]]) -> list[int]:
        known = _by_pk(Lead.objects.filter(organization=self.organization).only("pk"), ids)
        for value, index in ids:
            if value not in known:
                self.errors.append(f"{key}[{index}]: no lead {value!r}")
        return [known[value].pk for value, _ in ids if value in known]

    # --- Sends --------------------------------------------------------------------------

    def _send(self, data: dict, path: str) -> Send:
        """An unsaved send; its position is given when it is saved (after the last one)."""
        send = Send(name=data.get("name") or "")
        template = self._template(data, path)
        if template is not None:
            send.template = template
        send.category = data.get("category") or (
            template.category if template else Category.MARKETING
        )
        given = {component: data.get(key, []) for component, key in API_PARAMETER_KEYS.items()}
        if template is not None:
            self._parameter_counts(template, given, path)
        send.parameter_mapping = [entry for entries in given.values() for entry in entries]
        self._schedule(send, data.get("schedule") or {}, f"{path}.schedule")
        send.max_messages_per_second = data["maxMessagesPerSecond"]
        send.audience_filter_mode = data["audienceFilter"]
        event_filter = data.get("eventFilter")
        if event_filter is not None:
            # Seed 001's form exactly; the window's bound is the editor's (validate_send).
            send.event_filter_mode = event_filter.get("mode", Send.EventFilterMode.OFF)
            send.event_filter_type = event_filter.get("eventType") or ""
            within = event_filter.get("within")
            send.event_filter_within_minutes = within["minutes"] if within else None
        return send

    def _template(self, data: dict, path: str) -> MessageTemplate | None:
        name, language = data["template"], data.get("language")
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

    def _parameter_counts(self, template: MessageTemplate, given: dict, path: str) -> None:
        """Each list fills exactly its component's parameters: one left out would reach Meta
        as a 132000 for every recipient, one too many has nowhere to go."""
        slots = template.parameter_slots
        for component, key in API_PARAMETER_KEYS.items():
            expected = [slot.label for slot in slots if slot.component == component]
            entries = given[component]
            if len(entries) == len(expected):
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

    def _schedule(self, send: Send, schedule: dict, path: str) -> None:
        """An instant, a local time in a zone, or nothing: the campaign's start (+ offset)."""
        kinds = [key for key in SCHEDULE_FIELDS if key in schedule]
        local = schedule.get("recipientLocalTime", False)
        if local and kinds != ["localDate"]:
            self.errors.append(
                f"{path}.recipientLocalTime: only with localDate and localTime (a wall time "
                "read in each recipient's zone)"
            )
            return
        send.recipient_local_time = local
        if len(kinds) > 1:
            self.errors.append(
                f"{path}: give one of {', '.join(SCHEDULE_FIELDS)}, not {' and '.join(kinds)}"
            )
            return
        kind = kinds[0] if kinds else "startOffsetMinutes"
        if kind == "scheduledFor":
            send.local_date, send.local_time, send.time_zone = services.wall_time_in(
                schedule["scheduledFor"], self.zone
            )
        elif kind == "localDate":
            send.local_date = schedule["localDate"]
            if "localTime" in schedule:
                send.local_time = dt.time.fromisoformat(schedule["localTime"])
            else:
                self.errors.append(f"{path}.localTime: a wall-clock time HH:MM or HH:MM:SS")
            send.time_zone = schedule.get("timeZone") or self.zone
        else:
            # Provisional until the start fills it in: the editor needs a local time.
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            send.start_offset_minutes = schedule.get("startOffsetMinutes", 0)
            send.local_date, send.local_time, send.time_zone = services.wall_time_in(now, self.zone)

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
    data = validated_body(data, DuplicateBodySerializer)
    return data.get("id") or "", data.get("name") or ""


def _distinct(values: list[str]) -> list[tuple[str, int]]:
    """Distinct (id, index) pairs in the order given."""
    ids: dict[str, int] = {}
    for index, value in enumerate(values):
        ids.setdefault(value, index)
    return list(ids.items())
