"""Who a send reaches, decided once: the materializer, the messaging-limit gate, the dry run
and the dispatcher's opt-out re-check all agree with the product's rules computed here,
independently, in plain Python, over random but reproducible organizations."""

import datetime as dt
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from audiences import segments
from audiences.models import Lead, LeadEvent, OptOut
from campaigns import dispatcher
from campaigns import sends as send_lifecycle
from campaigns.materializer import materialize_send, preview_send
from campaigns.models import AudienceFilterEvent, Campaign, Send, SendRecipient
from campaigns.selectors import eligible_recipient_count
from messaging.models import Category
from tests.factories import (
    AudienceFactory,
    CampaignFactory,
    LeadEventFactory,
    LeadFactory,
    OptOutFactory,
    OrganizationFactory,
    SendFactory,
)

STATUS_WEIGHTS = {
    Lead.IngestStatus.OK: 6,
    Lead.IngestStatus.INELIGIBLE_GEO: 2,
    Lead.IngestStatus.DUPLICATE: 1,
    Lead.IngestStatus.INVALID_PHONE: 1,
}
PHONES = [f"+4420794600{n:02d}" for n in range(80)]
EXTERNAL_IDS = [f"ext-{n}" for n in range(40)] + [f"EXT-{n}" for n in range(5)] + [""]
EVENT_TYPES = ["purchase", "webinar", "Purchase"]
DYNAMIC_FILTER_REGION = "IE"


@dataclass
class World:
    """An organization with leads in segments of every kind, and what the rules read."""

    rng: random.Random
    organization: object
    other_organization: object
    campaign: Campaign
    leads: list[Lead]  # every lead of both organizations
    member_audiences: set[int]  # explicit segments of the campaign whose leads are members
    targets: set[int]  # leads added as targets of a segment of the campaign
    dynamic: bool  # the campaign has a dynamic segment (region IE)
    opt_outs: set[tuple[str, str]] = field(default_factory=set)  # (phone, scope) of the org
    events: list[tuple[str, str, dt.datetime]] = field(default_factory=list)  # of the org

    def is_member(self, lead: Lead) -> bool:
        if lead.organization_id != self.organization.pk:
            return False
        return (
            lead.audience_id in self.member_audiences
            or lead.pk in self.targets
            or (self.dynamic and lead.region == DYNAMIC_FILTER_REGION)
        )

    def add_opt_outs(self, count: int) -> None:
        """Opt-outs of both scopes for the organization, and of the same phones elsewhere
        (which must not count)."""
        added = set()
        for phone in self.rng.sample(PHONES, count):
            scope = self.rng.choice([OptOut.Scope.ALL, OptOut.Scope.MARKETING])
            added.add((self.organization, phone, scope))
            added.add((self.other_organization, phone, OptOut.Scope.ALL))
        OptOut.objects.bulk_create(
            (
                OptOutFactory.build(organization=organization, phone_e164=phone, scope=scope)
                for organization, phone, scope in added
            ),
            ignore_conflicts=True,
        )
        self.opt_outs |= {(phone, scope) for org, phone, scope in added if org == self.organization}


def build_world(seed: int, membership: str, organization=None, **campaign_fields) -> World:
    """A few hundred leads with phones drawn from a small pool (so duplicates within and
    across segments), invalid phones, US numbers, several regions and external ids that
    differ only in case. `membership` "csv": the campaign targets two CSV segments;
    "segments": a CSV segment, an explicit segment whose targets come from segments outside
    the campaign and from inside it, and a dynamic segment."""
    rng = random.Random(seed)
    org, other_org = organization or OrganizationFactory(), OrganizationFactory()
    campaign = CampaignFactory(
        organization=org, status=Campaign.Status.SCHEDULED, **campaign_fields
    )
    first, second, outside = (AudienceFactory(organization=org) for _ in range(3))
    elsewhere = AudienceFactory(organization=other_org)
    owners = [first, second, outside, elsewhere]
    leads = []
    for row in range(300):
        status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
        phone = "" if status == Lead.IngestStatus.INVALID_PHONE else rng.choice(PHONES)
        region = "US" if status == Lead.IngestStatus.INELIGIBLE_GEO else rng.choice(["GB", "IE"])
        leads.append(
            LeadFactory.build(
                audience=rng.choice(owners),
                row_number=row + 1,
                phone_e164=phone,
                external_id=rng.choice(EXTERNAL_IDS),
                ingest_status=status,
                region=region,
                limited_reporting=rng.random() < 0.5,
                first_name=f"Ann{row}",
                variables={"coupon": f"C{row}"},
            )
        )
    Lead.objects.bulk_create(leads)
    world = World(rng, org, other_org, campaign, leads, set(), set(), False)
    if membership == "csv":
        campaign.audiences.set([first, second])
        world.member_audiences = {first.pk, second.pk}
    else:
        picked = segments.create_segment(org, name="Picked")
        org_leads = [lead for lead in leads if lead.organization_id == org.pk]
        chosen = rng.sample(
            [lead.pk for lead in org_leads if lead.audience_id in (outside.pk, first.pk)], 60
        )
        segments.add_targets(picked, chosen)
        irish = segments.create_segment(
            org, name="Ireland", filter={"country": DYNAMIC_FILTER_REGION}
        )
        campaign.audiences.set([first, picked, irish])
        world.member_audiences, world.targets, world.dynamic = {first.pk}, set(chosen), True
    world.add_opt_outs(20)
    return world


def expected_recipients(world, category, filter_event, event_filter, fire_at) -> dict[str, int]:
    """phone → lead id of the send's recipients, computed row by row from the rules: members
    ingested ok (marketing: not US), not opted out in a scope that stops the category, the
    filter event and the event filter applied, the lowest lead id per phone."""
    marketing = category == Category.MARKETING
    allowed = {Lead.IngestStatus.OK} | (set() if marketing else {Lead.IngestStatus.INELIGIBLE_GEO})
    stopping = {OptOut.Scope.ALL} | ({OptOut.Scope.MARKETING} if marketing else set())
    opted_out = {phone for phone, scope in world.opt_outs if scope in stopping}
    chosen: dict[str, int] = {}
    for lead in sorted(world.leads, key=lambda lead: lead.pk):
        if not world.is_member(lead) or lead.ingest_status not in allowed:
            continue
        if not lead.phone_e164 or lead.phone_e164 in opted_out:
            continue
        if filter_event is not None:
            mode, ids, filter_phones = filter_event
            matched = bool(lead.external_id and lead.external_id in ids) or (
                lead.phone_e164 in filter_phones
            )
            if matched != (mode == "include"):
                continue
        if event_filter is not None:
            mode, event_type, within = event_filter
            has_event = any(
                phone == lead.phone_e164
                and kind == event_type
                and (within is None or fire_at - dt.timedelta(minutes=within) <= at <= fire_at)
                for phone, kind, at in world.events
            )
            if has_event != (mode == "include"):
                continue
        chosen.setdefault(lead.phone_e164, lead.pk)
    return chosen


def add_events(world: World, fire_at: dt.datetime) -> None:
    """Lead events of several types and times, the same ones in the other organization."""
    for _ in range(100):
        phone, kind = world.rng.choice(PHONES), world.rng.choice(EVENT_TYPES)
        at = fire_at - dt.timedelta(minutes=world.rng.randint(-10, 300))
        if (phone, kind, at) not in world.events:
            world.events.append((phone, kind, at))
    LeadEvent.objects.bulk_create(
        LeadEventFactory.build(
            organization=organization, phone_e164=phone, event_type=kind, occurred_at=at
        )
        for organization in (world.organization, world.other_organization)
        for phone, kind, at in world.events
    )


def add_filter_events(world: World, send: Send, mode: str):
    """Two filter events, the latest (the one that counts) of `mode`."""
    base = timezone.now() - dt.timedelta(minutes=30)
    latest = None
    for minutes in (0, 5):
        ids = world.rng.sample([e for e in EXTERNAL_IDS if e], 12)
        phones = world.rng.sample(PHONES, 12)
        event = AudienceFilterEvent.objects.create(
            send=send,
            organization=world.organization,
            mode=mode if minutes else ("exclude" if mode == "include" else "include"),
            payload_hash=f"hash-{minutes}",
            external_ids=ids,
            phones_e164=phones,
            lead_count=24,
        )
        AudienceFilterEvent.objects.filter(pk=event.pk).update(
            received_at=base + dt.timedelta(minutes=minutes)
        )
        latest = (mode, set(ids), set(phones))
    return latest


SCENARIOS = [
    # (membership, category, filter-event mode, event filter)
    ("csv", Category.MARKETING, None, None),
    ("csv", Category.UTILITY, "exclude", None),
    ("csv", Category.MARKETING, "include", ("exclude", "purchase", None)),
    ("csv", Category.MARKETING, None, ("include", "webinar", 120)),
    ("csv", Category.MARKETING, "exclude", ("include", "purchase", None)),
    ("csv", Category.UTILITY, "include", ("exclude", "webinar", 120)),
    ("segments", Category.MARKETING, None, None),
    ("segments", Category.UTILITY, None, None),
    ("segments", Category.MARKETING, "include", None),
    ("segments", Category.UTILITY, "exclude", ("include", "webinar", 120)),
    ("segments", Category.MARKETING, None, ("exclude", "Purchase", 60)),
    ("segments", Category.UTILITY, "include", ("include", "purchase", None)),
]


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("membership,category,filter_mode,event_filter", SCENARIOS)
def test_materializer_gate_and_dry_run_reach_the_independently_computed_set(
    seed, membership, category, filter_mode, event_filter
):
    world = build_world(seed, membership)
    fire_at = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=30)
    send = SendFactory(campaign=world.campaign, category=category, scheduled_for=fire_at)
    add_events(world, fire_at)
    if event_filter is not None:
        send.event_filter_mode, send.event_filter_type, send.event_filter_within_minutes = (
            event_filter
        )
    latest = None
    if filter_mode is not None:
        send.audience_filter_mode = Send.AudienceFilterMode.WEBHOOK_FILTERED
        latest = add_filter_events(world, send, filter_mode)
    send.save()
    expected = expected_recipients(world, category, latest, event_filter, fire_at)
    before_filters = expected_recipients(world, category, None, None, fire_at)
    limited = {lead.pk for lead in world.leads if lead.limited_reporting}

    gate = eligible_recipient_count(world.campaign, category)
    preview = preview_send(send, sample_size=len(PHONES))
    result = materialize_send(send.pk)

    recipients = list(SendRecipient.objects.filter(send=send).values_list("phone_e164", "lead_id"))
    assert expected, "the world leaves someone to message"
    assert dict(recipients) == expected and len(recipients) == len(expected)
    assert result.recipient_count == len(expected)
    assert gate == len(before_filters)
    assert preview.recipient_count == len(expected)
    assert preview.limited_reporting_count == len(set(expected.values()) & limited)
    assert {message.phone_e164 for message in preview.sample} == set(expected)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_engine")
@pytest.mark.parametrize("seed,category", [(3, Category.MARKETING), (4, Category.UTILITY)])
def test_the_dispatcher_skips_exactly_the_phones_that_opted_out_since_materialization(
    seed, category, sandbox, number, marketing_template, utility_template
):
    world = build_world(seed, "segments", number.organization, whatsapp_number=number)
    marketing = category == Category.MARKETING
    send = SendFactory(
        campaign=world.campaign,
        category=category,
        template=marketing_template if marketing else utility_template,
        parameter_mapping=["first_name", "variables.coupon"] if marketing else ["first_name"],
        max_messages_per_second=1000,
        scheduled_for=timezone.now() + dt.timedelta(seconds=30),
    )
    materialize_send(send.pk)
    materialized = set(SendRecipient.objects.filter(send=send).values_list("phone_e164", flat=True))
    world.add_opt_outs(20)  # STOPs after materialization, before the send fires
    Send.objects.filter(pk=send.pk).update(scheduled_for=timezone.now())
    assert send_lifecycle.start_due_sends() == [send.pk]

    assert dispatcher.dispatch_send(send.pk) is False

    still_eligible = set(expected_recipients(world, category, None, None, send.scheduled_for))
    rows = SendRecipient.objects.filter(send=send)
    sent = set(rows.filter(status=SendRecipient.Status.SENT).values_list("phone_e164", flat=True))
    skipped = set(
        rows.filter(
            status=SendRecipient.Status.SKIPPED, skip_reason=SendRecipient.SkipReason.OPTED_OUT
        ).values_list("phone_e164", flat=True)
    )
    assert sent == still_eligible
    assert skipped == materialized - still_eligible
    assert sent | skipped == materialized
    assert sent and skipped


def test_the_embedded_sqlite_shape_reaches_the_same_sets(tmp_path):
    """The embedded default runs on SQLite, which has no DISTINCT ON (campaigns.eligibility
    takes MIN(id) with bare columns there): the same randomized check, on SQLite, in a
    process of its own (the suite's database is PostgreSQL)."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'embedded.sqlite3'}"
    selected = "materializer_gate_and_dry_run and 1]"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-k", selected, "-p", "no:cacheprovider"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"{len(SCENARIOS)} passed" in run.stdout
