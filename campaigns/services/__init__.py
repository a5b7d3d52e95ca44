"""The campaign editor's rules, one concern a module, and the one lifecycle state machine
every caller (admin, API, engine) uses:

- `time_zones`: local times to UTC instants (gaps, overlaps, the wall time of an instant);
- `editing`: what a draft campaign and its sends may hold, and saving or deleting them;
- `gates`: the onboarding gates a campaign passes to be scheduled or resumed;
- `lifecycle`: the campaign's and the send's state machines;
- `verbs`: starting and deleting a campaign (the REST API's verbs).

Callers write `from campaigns import services` and `services.name`: the public names of
every module are re-exported here, so where a rule lives is this package's own business.
"""

from .editing import (
    EVENT_WINDOW_PROBLEM,
    MAX_EVENT_WINDOW_MINUTES,
    CampaignNotEditable,
    delete_send,
    offered_templates,
    save_campaign,
    save_send,
    template_choice_problem,
    validate_campaign,
    validate_send,
)
from .gates import resume_problems, scheduling_problems, send_problems
from .lifecycle import (
    ADMIN_ACTIONS,
    SEND_TRANSITIONS,
    TRANSITIONS,
    CampaignTransitionError,
    SendTransition,
    SendTransitionError,
    Transition,
    available_actions,
    status_from_sends,
    too_late,
    transition_campaign,
    transition_send,
)
from .time_zones import ResolvedInstant, resolve_local_time, time_zone_names, wall_time_in
from .verbs import DELETABLE_STATUSES, START_NOW_LEEWAY, delete_campaign, start_campaign

__all__ = [
    # time_zones
    "ResolvedInstant",
    "resolve_local_time",
    "time_zone_names",
    "wall_time_in",
    # editing
    "EVENT_WINDOW_PROBLEM",
    "MAX_EVENT_WINDOW_MINUTES",
    "CampaignNotEditable",
    "delete_send",
    "offered_templates",
    "save_campaign",
    "save_send",
    "template_choice_problem",
    "validate_campaign",
    "validate_send",
    # gates
    "resume_problems",
    "scheduling_problems",
    "send_problems",
    # lifecycle
    "ADMIN_ACTIONS",
    "SEND_TRANSITIONS",
    "TRANSITIONS",
    "CampaignTransitionError",
    "SendTransition",
    "SendTransitionError",
    "Transition",
    "available_actions",
    "status_from_sends",
    "too_late",
    "transition_campaign",
    "transition_send",
    # verbs
    "DELETABLE_STATUSES",
    "START_NOW_LEEWAY",
    "delete_campaign",
    "start_campaign",
]
