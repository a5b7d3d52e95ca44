"""What messaging announces to the apps above it, which it may not import (docs/architecture.md):
campaigns acts on these."""

from django.dispatch import Signal

# A number's quality became one that must stop its campaigns: Meta flagged it (webhook) or
# its rating reads RED (Graph API sync). Arguments: number, event. Receivers return the ids
# of the sends they paused.
quality_degraded = Signal()
