"""Template parameters: what each {{n}} of a send's template says for one lead.

A send's parameter_mapping has one entry per parameter of its template, in the order of
MessageTemplate.parameter_slots: the body's {{1}} … {{n}}, then the text header's {{1}}, then
each URL button's {{1}}. So a body-only template's mapping is the body list it always was, one
list is validated, rendered and stored (SendRecipient.parameters), and messaging.client splits
the rendered list into Meta's components. An entry is a lead field
("first_name"), a CSV/segment variable ("variables.coupon"), a literal in double
quotes ('"WELCOME"'), or a Django template over the lead
('{{ lead.variables.coupon|default:"WELCOME" }}'). Templates also read seed 003's names:
`receiver` is the lead (name, first_name, last_name, phone, email, id = external id, and its
variables as custom fields: `{{ receiver.coupon }}`), `sender` the business (name = the
organization, phone = the number's display number, id = its phone_number_id). Validation and
rendering share this module so the editor never accepts a mapping the dispatcher cannot render.

No blank text reaches a customer: a name the product cannot fill (`{{ channel.id }}`,
`{{ lead.nickname }}`, a variable no lead of the audience has) is refused when the mapping is
saved and when the campaign is scheduled, and a parameter that renders empty for one lead
raises MissingParameter, so that recipient is skipped instead of sent.

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

from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.base import FilterExpression, Node, NodeList, Variable
from django.template.defaulttags import ForNode, TemplateLiteral, WithNode
from django.template.smartif import TokenBase

from messaging.models import PARAMETER_PATTERN, ParameterSlot

LEAD_FIELDS = ("first_name", "last_name", "email", "external_id", "phone_e164")
# Every lead column a template may read (_template_data).
TEMPLATE_LEAD_FIELDS = (*LEAD_FIELDS, "variables")
VARIABLE_PREFIX = "variables."
# Seed 003's receiver (the lead) and sender (the business); a receiver name outside these
# is one of the lead's variables (a custom field).
RECEIVER_FIELDS = ("name", "first_name", "last_name", "phone", "email", "id", "external_id")
SENDER_FIELDS = ("name", "phone", "id")
TEMPLATE_ROOTS = ("lead", "receiver", "sender")


class MissingParameter(Exception):
    """A parameter renders empty (or blank) for this lead: Meta would send a message with a
    hole in it, so the recipient is skipped (reason missing_parameter) instead."""

    def __init__(self, position: int, entry: str, label: str = ""):
        self.position = position  # 1-based, in the mapping's order
        self.entry = entry
        self.label = label or f"{{{{{position}}}}}"  # {{2}}, header {{1}}, button Shop {{1}}
        super().__init__(f"Parameter {self.label} ({entry.strip()}) is empty for this lead")


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
    # ForNode only calls resolve() on its sequence, which _FirstItems provides.
    node.sequence = _FirstItems(node.sequence)  # type: ignore[assignment]
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
    if value is None:
        return ""  # a JSON null is no value: Django would print "None" to the customer
    if isinstance(value, (int, float, bool)):
        return value
    return _cut(str(value))


def _template_data(lead, sender) -> MappingProxyType:
    """What a template may read: the lead (as `lead` and as `receiver`) and the sender."""
    if lead is None:
        return _frozen({"lead": {}, "receiver": {}, "sender": sender or {}})
    data = {field: getattr(lead, field, "") or "" for field in LEAD_FIELDS}
    variables = lead.variables if isinstance(lead.variables, dict) else {}
    data["variables"] = variables
    name = " ".join(part for part in (data["first_name"], data["last_name"]) if part)
    receiver = {
        **variables,
        "name": name,
        "first_name": data["first_name"],
        "last_name": data["last_name"],
        "phone": data["phone_e164"],
        "email": data["email"],
        "id": data["external_id"],
        "external_id": data["external_id"],
    }
    return _frozen({"lead": data, "receiver": receiver, "sender": sender or {}})


def sender_of(campaign) -> dict:
    """The `sender` a campaign's templates read: its organization and WhatsApp number."""
    number = campaign.whatsapp_number
    return {
        "name": campaign.organization.name,
        "phone": number.display_phone_number,
        "id": number.phone_number_id,
    }


def _compile(entry: str):
    """The compiled template, or TemplateSyntaxError saying what is refused."""
    for name in _BLOCK_TAG.findall(entry):
        if name not in ALLOWED_TAGS and name not in _CLOSING_TAGS:
            raise TemplateSyntaxError(
                f"{{% {name} %}} is not allowed: only the {', '.join(ALLOWED_TAGS)} tags are"
            )
    template = _ENGINE.from_string(entry)
    for loop in template.nodelist.get_nodes_by_type(ForNode):
        assert isinstance(loop, ForNode)  # the stub returns list[Node]
        # A parsed loop's body is a NodeList; the stub also allows list[str].
        if loop.nodelist_loop.get_nodes_by_type(ForNode):  # type: ignore[union-attr]
            raise TemplateSyntaxError("{% for %} loops may not nest")
    return template


def _clean(text) -> str:
    """Meta refuses parameter text with new lines, tabs or more than 4 spaces in a row
    (error 132018); collapse whitespace and keep within the limit."""
    return " ".join(str(text).split())[:MAX_PARAMETER_LENGTH]


# --- Validation --------------------------------------------------------------------------------


def parameter_problem(entry, variables: set[str] | None = None) -> str | None:
    """What is wrong with one mapping entry, or None. `variables`: the names the audience's
    leads have (None when not known yet: the schedule gate checks them then)."""
    if not isinstance(entry, str):
        return "expected a string"
    if len(entry) > MAX_PARAMETER_LENGTH:
        return f"at most {MAX_PARAMETER_LENGTH:,} characters, got {len(entry):,}"
    entry = entry.strip()
    if not entry:
        return "not mapped: choose one of the audience's columns or type a fixed text"
    if is_expression(entry):
        try:
            template = _compile(entry)
        except TemplateSyntaxError as error:
            return f"template syntax error: {error}"
        lookups, bound = _references(template)
        problems = [_lookup_problem(path, variables) for path in lookups if path[0] not in bound]
        return "; ".join(sorted({p for p in problems if p})) or None
    if _is_literal(entry):
        return None if entry[1:-1].strip() else "an empty literal would send blank text"
    if entry in LEAD_FIELDS:
        return None
    if entry.startswith(VARIABLE_PREFIX) and len(entry) > len(VARIABLE_PREFIX):
        return _variable_problem(entry[len(VARIABLE_PREFIX) :], variables)
    return (
        f"{entry!r} is not a lead field ({', '.join(LEAD_FIELDS)}), a variable "
        "(variables.<name>), a quoted literal or a template such as {{ lead.first_name }}."
    )


def _variable_problem(name: str, variables: set[str] | None) -> str | None:
    if variables is None or name in variables:
        return None
    available = ", ".join(sorted(variables)) if variables else "none"
    return (
        f"no lead of the audience has the variable {name!r} (the audience's columns: {available})"
    )


def _lookup_problem(path: tuple[str, ...], variables: set[str] | None) -> str | None:
    """Why the product cannot fill {{ a.b.c }} (path ("a", "b", "c")), or None."""
    root, field = path[0], path[1] if len(path) > 1 else None
    if root == "lead":
        if field in LEAD_FIELDS:
            return None
        if field == "variables":
            return _variable_problem(path[2], variables) if len(path) > 2 else None
        return (
            f"lead.{field or ''} is not a lead field ({', '.join(LEAD_FIELDS)}, variables.<name>)"
        )
    if root == "receiver":
        if field is None:
            return f"name a field of receiver ({', '.join(RECEIVER_FIELDS)}, or a variable)"
        return None if field in RECEIVER_FIELDS else _variable_problem(field, variables)
    if root == "sender":
        if field in SENDER_FIELDS:
            return None
        return f"sender.{field or ''} is not available (sender has {', '.join(SENDER_FIELDS)})"
    if root == "channel":
        return "channel is not available: a WhatsApp message goes to one lead (use receiver)"
    return f"unknown variable {root!r}: templates read {', '.join(TEMPLATE_ROOTS)}"


def _references(template) -> tuple[set[tuple[str, ...]], set[str]]:
    """(the lookup path of every variable the template reads, the names it binds itself
    with {% for %} and {% with %})."""
    lookups: set[tuple[str, ...]] = set()
    bound = {"forloop"}
    for node in template.nodelist.get_nodes_by_type(Node):
        if isinstance(node, ForNode):
            bound.update(node.loopvars)
        if isinstance(node, WithNode):
            bound.update(node.extra_context)
        for value in vars(node).values():
            _collect(value, lookups)
    return lookups, bound


def _collect(value, lookups: set, depth: int = 0) -> None:
    """Every Variable inside a node's attributes: filter expressions and their arguments,
    {% if %} condition trees, {% for %} sequences, {% with %} values, {% firstof %} lists."""
    if depth > 50 or isinstance(value, (Node, NodeList, str)):
        return
    if isinstance(value, Variable):
        if value.lookups:
            lookups.add(tuple(value.lookups))
    elif isinstance(value, FilterExpression):
        _collect(value.var, lookups, depth + 1)
        for _, arguments in value.filters:
            for is_lookup, argument in arguments:
                if is_lookup:
                    _collect(argument, lookups, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, lookups, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, lookups, depth + 1)
    elif isinstance(value, (TokenBase, TemplateLiteral, _FirstItems)):
        for item in vars(value).values():
            _collect(item, lookups, depth + 1)


def editor_columns(variables: set[str] | None) -> list[str]:
    """What the editor's drop-downs offer for a parameter: the lead fields, then the
    audience's variables (none while the audience is not known or still ingesting)."""
    return [*LEAD_FIELDS, *(f"{VARIABLE_PREFIX}{name}" for name in sorted(variables or ()))]


def count_problem(mapping: list, slots: tuple[ParameterSlot, ...]) -> str | None:
    """A mapping must fill every parameter of the template, wherever it is: a header or
    button parameter left out would reach Meta as a 132000 for every recipient."""
    if len(mapping) == len(slots):
        return None
    body = sum(1 for slot in slots if slot.component == ParameterSlot.BODY)
    if len(slots) == body:
        return f"The template has {body} parameter(s) but the mapping gives {len(mapping)}."
    unfilled = [slot.label for slot in slots[len(mapping) :] if slot.component != slot.BODY]
    return (
        f"The template has {len(slots)} parameter(s) ({body} in the body, "
        f"{', '.join(slot.label for slot in slots if slot.component != slot.BODY)}) but the "
        f"mapping gives {len(mapping)}"
        + (f": {', '.join(unfilled)} not filled." if unfilled else ".")
    )


def slot_labels(slots: tuple[ParameterSlot, ...], count: int) -> list[str]:
    """The label of each of `count` mapping entries; an entry beyond the slots by its number."""
    return [slots[i].label if i < len(slots) else f"{{{{{i + 1}}}}}" for i in range(count)]


def validate_parameter_mapping(
    mapping, slots: tuple[ParameterSlot, ...], variables: set[str] | None = None
) -> list[str]:
    """Problems with a mapping for a template with these parameter slots, for an
    audience whose leads have `variables` (None: not checked)."""
    if not isinstance(mapping, list) or not all(isinstance(e, str) for e in mapping):
        return ['The parameter mapping must be a list of strings, e.g. ["first_name"].']
    problems = [count_problem(mapping, slots)]
    for entry, label in zip(mapping, slot_labels(slots, len(mapping)), strict=True):
        problem = parameter_problem(entry, variables)
        if problem:
            problems.append(f"Parameter {label}: {problem}")
    return [problem for problem in problems if problem]


# --- Rendering ---------------------------------------------------------------------------------


def _entry_renderer(entry: str) -> Callable:
    """A function of the template data (lead, receiver, sender) giving the entry's text."""
    entry = entry.strip()
    if is_expression(entry):
        template = _compile(entry)

        def render_expression(data) -> str:
            try:
                return template.render(Context(dict(data), autoescape=False))
            except Exception:  # a filter refusing this lead's value (|date on text, …)
                return ""

        return render_expression
    if _is_literal(entry):
        literal = entry[1:-1]
        return lambda data: literal
    if entry.startswith(VARIABLE_PREFIX):
        name = entry[len(VARIABLE_PREFIX) :]
        return lambda data: _text(data["lead"].get("variables", {}).get(name))
    return lambda data: _text(data["lead"].get(entry))


def _text(value) -> str:
    return "" if value is None else str(value)


def compile_parameters(
    mapping: list[str], *, sender: dict | None = None, slots: tuple[ParameterSlot, ...] = ()
) -> Callable[[object], list[str]]:
    """Compile a (valid) mapping once; the result renders every parameter for one lead and
    raises MissingParameter when one of them would be empty. `sender`: sender_of(campaign),
    for templates that read {{ sender.… }} (without it they render empty, so they raise);
    `slots`: the template's, so a MissingParameter names a header or button parameter.

    Thread-safe: the dispatch runs of one send (one per dispatch task) may share one."""
    labels = slot_labels(slots, len(mapping))
    renderers = [
        (entry, label, _entry_renderer(entry)) for entry, label in zip(mapping, labels, strict=True)
    ]

    def render(lead) -> list[str]:
        data = _template_data(lead, sender)
        values = []
        for position, (entry, label, renderer) in enumerate(renderers, start=1):
            value = _clean(renderer(data))
            if not value:
                raise MissingParameter(position, entry, label)
            values.append(value)
        return values

    return render


def send_renderer(send) -> Callable[[object], list[str]]:
    """compile_parameters for a send: its mapping, its campaign's sender, its template's
    slots. What the dispatcher, test sends and previews render with."""
    return compile_parameters(
        send.parameter_mapping,
        sender=sender_of(send.campaign),
        slots=send.template.parameter_slots,
    )


def render_parameters(
    mapping: list[str], lead, *, sender: dict | None = None, slots: tuple[ParameterSlot, ...] = ()
) -> list[str]:
    """The text of every parameter for one lead; MissingParameter when one is empty."""
    return compile_parameters(mapping, sender=sender, slots=slots)(lead)


def render_body(body_text: str, parameters: list[str]) -> str:
    """The template body as the recipient reads it, {{n}} replaced by parameter n (the body's
    parameters come first in a mapping, so a header's or button's never lands here)."""

    def substitute(match):
        position = int(match.group(1))
        return parameters[position - 1] if 0 < position <= len(parameters) else match.group(0)

    return PARAMETER_PATTERN.sub(substitute, body_text)


def component_texts(slots: tuple[ParameterSlot, ...], parameters: list[str]) -> list[str]:
    """The text header and each URL button as the recipient gets them, their {{n}} filled
    from a rendering's header and button parameters: what the editor previews beside the
    body ("header: Sale for Zoë", "button Shop: https://shop.example/AB12")."""
    return [text for _, text in _component_texts(slots, parameters)]


def _component_texts(slots, parameters) -> list[tuple[str, str]]:
    """(component, filled text) of the header and of each URL button, in slot order."""
    texts: dict[tuple[str, int | None], tuple[str, list[str]]] = {}
    for slot, value in zip(slots, parameters, strict=False):
        if slot.component == ParameterSlot.BODY:
            continue
        key = (slot.component, slot.button_index)
        prefix = slot.label.rsplit(" ", 1)[0]  # "header", "button Shop"
        texts.setdefault(key, (f"{prefix}: {slot.text}", []))[1].append(value)
    return [(key[0], render_body(text, values)) for key, (text, values) in texts.items()]


def render_message(body_text: str, slots: tuple[ParameterSlot, ...], parameters: list) -> str:
    """The whole message as the recipient reads it, one line per part: the text header, the
    body, then each URL button (a body-only template's message is its body)."""
    texts = _component_texts(slots, parameters)
    header = [text for component, text in texts if component == ParameterSlot.HEADER]
    buttons = [text for component, text in texts if component == ParameterSlot.BUTTON]
    return "\n".join([*header, render_body(body_text, parameters), *buttons])


def by_component(values: list, slots: tuple[ParameterSlot, ...]) -> tuple[list, list, list]:
    """(body, header, buttons): a mapping's (or its rendering's) entries split by the
    component their slot is in, each in order. Entries beyond the slots (a template synced
    since) stay with the body, where the count check names them."""
    parts: dict[str, list] = {
        ParameterSlot.BODY: [],
        ParameterSlot.HEADER: [],
        ParameterSlot.BUTTON: [],
    }
    for index, value in enumerate(values):
        component = slots[index].component if index < len(slots) else ParameterSlot.BODY
        parts[component].append(value)
    return parts[ParameterSlot.BODY], parts[ParameterSlot.HEADER], parts[ParameterSlot.BUTTON]


# --- The REST API's spelling -------------------------------------------------------------------


# The API's key for the entries of each component (`parameters` stays the body's list).
API_PARAMETER_KEYS = {
    ParameterSlot.BODY: "parameters",
    ParameterSlot.HEADER: "headerParameters",
    ParameterSlot.BUTTON: "buttonParameters",
}


def api_parameters(values: list, slots: tuple[ParameterSlot, ...]) -> dict:
    """A mapping's (or a rendering's) entries under the API's keys, by component."""
    return dict(zip(API_PARAMETER_KEYS.values(), by_component(values, slots), strict=True))


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
