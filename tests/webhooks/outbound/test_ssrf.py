"""Outbound webhooks never reach internal addresses: refused at registration (API and admin)
and again at delivery, after resolving the name, on the very address the worker connects to.

DNS is the one part no real service can play here, so names resolve through a patched
resolver; the connections are real sockets."""

import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from setter.services import create_api_key
from tests.factories import UserFactory
from webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.outbound import delivery, services, targets
from webhooks.outbound.targets import validate_webhook_url

pytestmark = pytest.mark.django_db
delivering = pytest.mark.django_db(transaction=True)  # the first try runs on commit

API_URL = "/api/v1/webhook-endpoints"
PUBLIC = "93.184.216.34"

# (address class, literal address) in IPv4 and IPv6, and IPv6 forms embedding IPv4.
REFUSED = [
    ("loopback", "127.0.0.1"),
    ("loopback", "127.45.6.7"),
    ("loopback", "::1"),
    ("private", "10.1.2.3"),
    ("private", "172.16.0.9"),
    ("private", "172.31.255.254"),
    ("private", "192.168.1.1"),
    ("private", "fc00::1"),
    ("private", "fd12:3456:789a::1"),
    ("link-local", "169.254.169.254"),
    ("link-local", "169.254.0.1"),
    ("link-local", "fe80::1"),
    ("multicast", "224.0.0.1"),
    ("multicast", "239.255.255.250"),
    ("multicast", "ff02::1"),
    ("unspecified", "0.0.0.0"),
    ("unspecified", "::"),
    ("loopback", "::ffff:127.0.0.1"),
    ("private", "::ffff:10.0.0.1"),
    ("link-local", "::ffff:169.254.169.254"),
    ("link-local", "64:ff9b::a9fe:a9fe"),
    ("loopback", "2002:7f00:1::1"),
    ("reserved", "100.64.0.1"),
]
IDS = [f"{kind}-{address}" for kind, address in REFUSED]


def url_of(address: str, path: str = "/hook") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}{path}"


@pytest.fixture
def no_loopback(settings):
    settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK = False


@pytest.fixture
def dns(monkeypatch):
    """Names resolve to what the test says; every lookup is recorded."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []

    def resolve(host, port):
        lookups.append(host)
        if host not in answers:
            raise targets.socket.gaierror(-2, "Name or service not known")
        return [targets.ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(targets, "resolve", resolve)
    return answers, lookups


@pytest.fixture
def api(client, organization):
    key = create_api_key(organization, "CRM")[1]

    def post(payload):
        return client.post(
            API_URL,
            orjson.dumps(payload),
            content_type="application/json",
            headers={"x-api-key": key},
        )

    return post


class Server:
    """A real HTTP server on 127.0.0.1 answering every POST with the given status, headers and
    body, counting the requests it got."""

    def __init__(self, status=200, headers=None, body=b"ok"):
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.hits += 1
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    started = []

    def start(**kwargs):
        started.append(Server(**kwargs))
        return started[-1]

    yield start
    for running in started:
        running.close()


def deliver(organization) -> WebhookDelivery:
    """Emit an event and play the worker's one attempt."""
    with transaction.atomic():
        (delivery_id,) = services.emit_event(
            organization, EventType.CAMPAIGN_STARTED, {"type": "campaign.started"}
        )
    delivery.attempt(delivery_id)
    return WebhookDelivery.objects.get(pk=delivery_id)


def endpoint_unchecked(organization, url) -> WebhookEndpoint:
    """An endpoint stored without the registration check (as one registered before it)."""
    return WebhookEndpoint.objects.create(organization=organization, url=url, secret="whsec_AAAA")


# --- Registration ---------------------------------------------------------------------------


@pytest.mark.usefixtures("no_loopback")
@pytest.mark.parametrize(("kind", "address"), REFUSED, ids=IDS)
def test_the_api_refuses_a_literal_internal_address_naming_url(api, kind, address):
    answer = api({"url": url_of(address)})

    assert answer.status_code == 400
    message = answer.json()["message"]
    assert message.startswith("url: ") and kind in message
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.usefixtures("no_loopback")
@pytest.mark.parametrize(("kind", "address"), REFUSED, ids=IDS)
def test_the_api_refuses_a_name_resolving_to_an_internal_address(api, dns, kind, address):
    answers, _ = dns
    answers["crm.partner.test"] = [PUBLIC, address]

    answer = api({"url": "https://crm.partner.test/hook"})

    assert answer.status_code == 400
    message = answer.json()["message"]
    assert f"resolves to {ipaddress.ip_address(address)}" in message and kind in message
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.usefixtures("no_loopback")
def test_localhost_and_numeric_spellings_of_loopback_are_refused_through_the_real_resolver(api):
    for url in ("http://localhost:6379/", "http://2130706433/", "http://127.1/"):
        answer = api({"url": url})
        assert answer.status_code == 400, url
        assert answer.json()["message"].startswith("url: "), url


@pytest.mark.parametrize(
    "url", ["ftp://crm.example.com/h", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO"]
)
def test_only_http_and_https_are_accepted(api, url):
    answer = api({"url": url})

    assert answer.status_code == 400 and answer.json()["message"].startswith("url")
    with pytest.raises(ValidationError):
        validate_webhook_url(url)


@pytest.mark.usefixtures("no_loopback")
def test_public_addresses_and_names_that_do_not_resolve_yet_are_accepted(api, dns):
    answers, _ = dns
    answers["crm.partner.test"] = [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"]

    for url in (
        "https://crm.partner.test/hook",
        f"https://{PUBLIC}/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
        "https://not-yet.partner.test/hook",
    ):
        assert api({"url": url}).status_code == 201, url


@pytest.mark.usefixtures("no_loopback")
def test_the_admin_refuses_an_internal_address_on_the_url_field(client, organization):
    client.force_login(UserFactory(organization=organization))

    response = client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {"organization": organization.pk, "url": "http://169.254.169.254/latest/meta-data/"},
    )

    assert response.status_code == 200
    assert "link-local" in str(response.context["adminform"].form.errors["url"])
    assert not WebhookEndpoint.objects.exists()


def test_the_loopback_setting_admits_loopback_only(settings):
    settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK = True
    validate_webhook_url("http://127.0.0.1:8000/hook")
    validate_webhook_url("http://[::1]:8000/hook")
    for address in ("10.0.0.1", "169.254.169.254", "fc00::1", "0.0.0.0"):
        with pytest.raises(ValidationError):
            validate_webhook_url(url_of(address))


def test_the_loopback_setting_is_off_by_default():
    from config import settings as project_settings

    assert project_settings.OUTBOUND_WEBHOOK_ALLOW_LOOPBACK is False


# --- Delivery -------------------------------------------------------------------------------


@delivering
@pytest.mark.usefixtures("no_loopback")
@pytest.mark.parametrize(("kind", "address"), REFUSED, ids=IDS)
def test_delivery_refuses_an_internal_literal_without_connecting(organization, kind, address):
    endpoint_unchecked(organization, url_of(address))

    sent = deliver(organization)

    (attempt,) = WebhookAttempt.objects.filter(delivery=sent)
    assert attempt.status_code is None and attempt.error.startswith("Refused: ")
    assert kind in attempt.error
    assert sent.status == WebhookDelivery.Status.PENDING  # retried: the URL may be fixed


@delivering
@pytest.mark.usefixtures("no_loopback")
def test_a_name_rebound_to_loopback_after_registration_is_refused_at_delivery(
    organization, dns, server
):
    answers, _ = dns
    receiver = server()
    answers["crm.partner.test"] = [PUBLIC]
    services.create_endpoint(organization, f"http://crm.partner.test:{receiver.port}/hook")
    answers["crm.partner.test"] = ["127.0.0.1"]

    sent = deliver(organization)

    assert receiver.hits == 0
    assert "resolves to 127.0.0.1" in sent.attempts.get().error


@delivering
def test_delivery_connects_to_the_address_it_checked_resolving_once(organization, dns, server):
    answers, lookups = dns
    receiver = server()
    answers["crm.partner.test"] = ["127.0.0.1"]
    services.create_endpoint(organization, f"http://crm.partner.test:{receiver.port}/hook")
    lookups.clear()

    sent = deliver(organization)

    # The name exists only in the patched resolver: the socket went to the address it gave.
    assert receiver.hits == 1 and sent.status == WebhookDelivery.Status.SUCCEEDED
    assert lookups == ["crm.partner.test"]


@delivering
def test_a_redirect_to_an_internal_address_is_not_followed(organization, server):
    internal = server()
    bouncer = server(status=302, headers={"Location": f"http://127.0.0.1:{internal.port}/admin"})
    services.create_endpoint(organization, f"http://127.0.0.1:{bouncer.port}/hook")

    sent = deliver(organization)

    assert (bouncer.hits, internal.hits) == (1, 0)
    assert (sent.last_status_code, sent.last_error) == (302, "HTTP 302")


@delivering
def test_only_an_excerpt_of_the_answer_is_stored(organization, server):
    chatty = server(body=b"x" * 5_000_000)
    services.create_endpoint(organization, f"http://127.0.0.1:{chatty.port}/hook")

    sent = deliver(organization)

    body = sent.attempts.get().response_body
    assert body == "x" * WebhookAttempt.RESPONSE_EXCERPT_CHARS
