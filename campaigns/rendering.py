"""Template parameters: what each {{n}} of a send's template says for one lead.

A send's parameter_mapping has one entry per positional parameter: a lead field
("first_name"), a CSV/segment variable ("variables.coupon"), or a literal in double
quotes ('"WELCOME"'). Validation and rendering share this module so the editor never
accepts a mapping the dispatcher cannot render.
"""

from django.core.exceptions import ValidationError

from messaging.models import PARAMETER_PATTERN

LEAD_FIELDS = ("first_name", "last_name", "email", "external_id", "phone_e164")
VARIABLE_PREFIX = "variables."


def _is_literal(entry: str) -> bool:
    return len(entry) >= 2 and entry.startswith('"') and entry.endswith('"')


def validate_parameter_mapping(mapping, parameter_count: int) -> list[str]:
    """Problems with a mapping for a template with parameter_count parameters."""
    if not isinstance(mapping, list) or not all(isinstance(e, str) for e in mapping):
        return ['The parameter mapping must be a list of strings, e.g. ["first_name"].']
    problems = []
    if len(mapping) != parameter_count:
        problems.append(
            f"The template has {parameter_count} parameter(s) but the mapping gives {len(mapping)}."
        )
    for position, entry in enumerate(mapping, start=1):
        entry = entry.strip()
        if _is_literal(entry) or entry in LEAD_FIELDS:
            continue
        if entry.startswith(VARIABLE_PREFIX) and len(entry) > len(VARIABLE_PREFIX):
            continue
        problems.append(
            f"Parameter {{{{{position}}}}}: {entry!r} is not a lead field "
            f"({', '.join(LEAD_FIELDS)}), a variable (variables.<name>) or a quoted literal."
        )
    return problems


def check_parameter_mapping(mapping, parameter_count: int) -> None:
    problems = validate_parameter_mapping(mapping, parameter_count)
    if problems:
        raise ValidationError(problems)


def render_parameters(mapping: list[str], lead) -> list[str]:
    """The text of every parameter for one lead; missing values render as empty text."""
    values = []
    for entry in mapping:
        entry = entry.strip()
        if _is_literal(entry):
            values.append(entry[1:-1])
        elif entry.startswith(VARIABLE_PREFIX):
            variables = (lead.variables if lead is not None else None) or {}
            value = variables.get(entry[len(VARIABLE_PREFIX) :], "")
            values.append("" if value is None else str(value))
        else:
            value = getattr(lead, entry, "") if lead is not None else ""
            values.append("" if value is None else str(value))
    return values


def render_body(body_text: str, parameters: list[str]) -> str:
    """The template body as the recipient reads it, {{n}} replaced by parameter n."""

    def substitute(match):
        position = int(match.group(1))
        return parameters[position - 1] if 0 < position <= len(parameters) else match.group(0)

    return PARAMETER_PATTERN.sub(substitute, body_text)
