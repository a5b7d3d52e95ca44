"""Template parameters: what each {{n}} of a send's template says for one lead.

A send's parameter_mapping has one entry per positional parameter: a lead field
("first_name"), a CSV/segment variable ("variables.coupon"), a literal in double
quotes ('"WELCOME"'), or a Django template over the lead
('{{ lead.variables.coupon|default:"WELCOME" }}'). Validation and rendering share this
module so the editor never accepts a mapping the dispatcher cannot render.

Expressions run in a sandbox: an Engine of their own without loaders or libraries and with
only the if/for/with/firstof tags, over a frozen copy of the lead's data (never the model,
so no method, relation or query is in reach). Filters that build strings from a number
(ljust, stringformat, floatformat, …) refuse numbers beyond the parameter limit, every
filter's result is cut to that limit, and loops may not nest, so one parameter cannot
make a worker build gigabytes. The dispatcher compiles a send's mapping once per slice.
"""

import itertools
import re
from collections.abc import Callable
from functools import wraps
from types import MappingProxyType

from django.core.exceptions import ValidationError
from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.defaulttags import ForNode

from messaging.models import PARAMETER_PATTERN

LEAD_FIELDS = ("first_name", "last_name", "email", "external_id", "phone_e164")
VARIABLE_PREFIX = "variables."
# Meta's limit for a body text parameter when the template has other components too
# (Cloud API reference, messages, "parameter object": 1,024; 32,768 for a body-only template).
MAX_PARAMETER_LENGTH = 1024
# A for loop runs at most this many times, over the first items of its sequence.
MAX_LOOP_ITEMS = 32
ALLOWED_TAGS = ("if", "for", "with", "firstof")
_CLOSING_TAGS = ("elif", "else", "endif", "empty", "endfor", "endwith")
_BLOCK_TAG = re.compile(r"\{%-?\s*(\S*)")
_NUMBER = re.compile(r"\d+")
# Filters whose numeric argument is the size of what they build.
_SIZED_FILTERS = ("center", "ljust", "rjust", "stringformat", "floatformat")


def is_expression(entry: str) -> bool:
    return "{{" in entry or "{%" in entry


def _is_literal(entry: str) -> bool:
    return len(entry) >= 2 and entry.startswith('"') and entry.endswith('"')


# --- The sandbox -----------------------------------------------------------------------------


def _cut(value):
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_PARAMETER_LENGTH:
        return value[:MAX_PARAMETER_LENGTH]
    return value


def _bounded(name: str, function):
    """The filter with its result cut to the limit; a sized filter refuses oversized args."""
    sized = name in _SIZED_FILTERS

    @wraps(function)  # keeps the filter's flags and, through __wrapped__, its signature
    def bounded(*args, **kwargs):
        if sized and len(args) > 1:
            if any(int(n) > MAX_PARAMETER_LENGTH for n in _NUMBER.findall(str(args[1]))):
                return ""
        return _cut(function(*args, **kwargs))

    return bounded


class _FirstItems:
    """A for loop's sequence cut to MAX_LOOP_ITEMS, so a loop cannot multiply its body's
    output without bound."""

    def __init__(self, expression):
        self.expression = expression

    def resolve(self, context, ignore_failures=False):
        values = self.expression.resolve(context, ignore_failures)
        return values if values is None else list(itertools.islice(values, MAX_LOOP_ITEMS))


def _bounded_for(parser, token):
    node = defaulttags.do_for(parser, token)
    node.sequence = _FirstItems(node.sequence)
    return node


def _sandbox_engine() -> Engine:
    tags = Library()
    for name in ALLOWED_TAGS:
        tags.tag(name, defaulttags.register.tags[name])
    tags.tag("for", _bounded_for)
    filters = Library()
    for name, function in defaultfilters.register.filters.items():
        filters.filters[name] = _bounded(name, function)
    engine = Engine(loaders=[], libraries={}, builtins=[], autoescape=False)
    engine.template_builtins = [tags, filters]
    return engine


_ENGINE = _sandbox_engine()


def _frozen(value):
    """Plain, read-only data: no method the template could call changes anything."""
    if isinstance(value, dict):
        return MappingProxyType({str(k): _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value[:MAX_LOOP_ITEMS])
    if isinstance(value, str):
        return _cut(value)  # no parameter can show more; bounds what filters and loops get
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return _cut(str(value))


def _lead_data(lead) -> MappingProxyType:
    if lead is None:
        return MappingProxyType({})
    data = {field: getattr(lead, field, "") or "" for field in LEAD_FIELDS}
    data["variables"] = lead.variables or {}
    return _frozen(data)


def _compile(entry: str):
    """The compiled template, or TemplateSyntaxError saying what is refused."""
    for name in _BLOCK_TAG.findall(entry):
        if name not in ALLOWED_TAGS and name not in _CLOSING_TAGS:
            raise TemplateSyntaxError(
                f"{{% {name} %}} is not allowed: only the {', '.join(ALLOWED_TAGS)} tags are"
            )
    template = _ENGINE.from_string(entry)
    for loop in template.nodelist.get_nodes_by_type(ForNode):
        if loop.nodelist_loop.get_nodes_by_type(ForNode):
            raise TemplateSyntaxError("{% for %} loops may not nest")
    return template


def _clean(text) -> str:
    """Meta refuses parameter text with new lines, tabs or more than 4 spaces in a row
    (error 132018); collapse whitespace and keep within the limit."""
    return " ".join(str(text).split())[:MAX_PARAMETER_LENGTH]


# --- Validation --------------------------------------------------------------------------------


def parameter_problem(entry) -> str | None:
    """What is wrong with one mapping entry, or None."""
    if not isinstance(entry, str):
        return "expected a string"
    if len(entry) > MAX_PARAMETER_LENGTH:
        return f"at most {MAX_PARAMETER_LENGTH:,} characters, got {len(entry):,}"
    entry = entry.strip()
    if is_expression(entry):
        try:
            _compile(entry)
        except TemplateSyntaxError as error:
            return f"template syntax error: {error}"
        return None
    if _is_literal(entry) or entry in LEAD_FIELDS:
        return None
    if entry.startswith(VARIABLE_PREFIX) and len(entry) > len(VARIABLE_PREFIX):
        return None
    return (
        f"{entry!r} is not a lead field ({', '.join(LEAD_FIELDS)}), a variable "
        "(variables.<name>), a quoted literal or a template such as {{ lead.first_name }}."
    )


def count_problem(mapping: list, parameter_count: int) -> str | None:
    if len(mapping) != parameter_count:
        return (
            f"The template has {parameter_count} parameter(s) but the mapping gives {len(mapping)}."
        )
    return None


def validate_parameter_mapping(mapping, parameter_count: int) -> list[str]:
    """Problems with a mapping for a template with parameter_count parameters."""
    if not isinstance(mapping, list) or not all(isinstance(e, str) for e in mapping):
        return ['The parameter mapping must be a list of strings, e.g. ["first_name"].']
    problems = [count_problem(mapping, parameter_count)]
    for position, entry in enumerate(mapping, start=1):
        problem = parameter_problem(entry)
        if problem:
            problems.append(f"Parameter {{{{{position}}}}}: {problem}")
    return [problem for problem in problems if problem]


def check_parameter_mapping(mapping, parameter_count: int) -> None:
    problems = validate_parameter_mapping(mapping, parameter_count)
    if problems:
        raise ValidationError(problems)


# --- Rendering ---------------------------------------------------------------------------------


def _entry_renderer(entry: str) -> Callable:
    """A function of the lead's frozen data giving the entry's text."""
    entry = entry.strip()
    if is_expression(entry):
        template = _compile(entry)

        def render_expression(data) -> str:
            try:
                return template.render(Context({"lead": data}, autoescape=False))
            except Exception:  # a filter refusing this lead's value (|date on text, …)
                return ""

        return render_expression
    if _is_literal(entry):
        literal = entry[1:-1]
        return lambda data: literal
    if entry.startswith(VARIABLE_PREFIX):
        name = entry[len(VARIABLE_PREFIX) :]
        return lambda data: _text(data.get("variables", {}).get(name))
    return lambda data: _text(data.get(entry))


def _text(value) -> str:
    return "" if value is None else str(value)


def compile_parameters(mapping: list[str]) -> Callable[[object], list[str]]:
    """Compile a (valid) mapping once; the result renders every parameter for one lead.

    Thread-safe: the dispatcher's delivery threads share one per send."""
    renderers = [_entry_renderer(entry) for entry in mapping]

    def render(lead) -> list[str]:
        data = _lead_data(lead)
        return [_clean(renderer(data)) for renderer in renderers]

    return render


def render_parameters(mapping: list[str], lead) -> list[str]:
    """The text of every parameter for one lead; missing values render as empty text."""
    return compile_parameters(mapping)(lead)


def render_body(body_text: str, parameters: list[str]) -> str:
    """The template body as the recipient reads it, {{n}} replaced by parameter n."""

    def substitute(match):
        position = int(match.group(1))
        return parameters[position - 1] if 0 < position <= len(parameters) else match.group(0)

    return PARAMETER_PATTERN.sub(substitute, body_text)


# --- The REST API's spelling -------------------------------------------------------------------


def api_parameter(entry: str) -> str:
    """A mapping entry as the API shows it: a template, or the literal text itself."""
    stripped = entry.strip()
    if is_expression(stripped):
        return entry
    if _is_literal(stripped):
        return stripped[1:-1]
    return f"{{{{ lead.{stripped} }}}}"


def stored_parameter(value: str) -> str:
    """An API parameter as the mapping stores it: templates as they are, anything else as a
    quoted literal (so the editor shows it as one)."""
    return value if is_expression(value) else f'"{value}"'
