"""A small client for the sandbox's /_sandbox/ control endpoints (tests and benchmarks)."""

import requests

from messaging.models import MessageTemplate, WhatsAppNumber


class SandboxControl:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def _post(self, path: str, data: dict | None = None) -> dict:
        response = self.session.post(f"{self.url}/_sandbox/{path}", json=data or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def _get(self, path: str, **params) -> dict:
        response = self.session.get(f"{self.url}/_sandbox/{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def configure(self, **settings) -> dict:
        """Change behaviour (latency_ms, ratio_slow with slow_ms_min/max, ratio_429, ratio_5xx,
        ratio_async_failure, limited_reporting, webhook_url, …); returns the whole config."""
        return self._post("config", settings)

    def reset(self) -> dict:
        """Back to the start: config, known numbers and templates; records and pending webhooks cleared."""
        return self._post("reset")

    def reload(self) -> dict:
        return self._post("reload")

    def register_number(self, number: WhatsAppNumber, **overrides) -> dict:
        data = {
            "phone_number_id": number.phone_number_id,
            "waba_id": number.waba_id,
            "access_token": number.access_token,
            "display_phone_number": number.display_phone_number,
            "messaging_limit_tier": number.messaging_limit,
            "quality_rating": number.quality_rating or "GREEN",
            "mm_lite_terms_accepted": number.mm_lite_terms_accepted,
        }
        return self._post("numbers", {**data, **overrides})

    def register_template(self, template: MessageTemplate, waba_id: str, **overrides) -> dict:
        data = {
            "waba_id": waba_id,
            "name": template.name,
            "language": template.language,
            "category": template.category,
            "status": template.status,
            "body_text": template.body_text,
        }
        if template.components:
            data["components"] = template.components
        if template.meta_template_id:
            data["id"] = template.meta_template_id
        return self._post("templates", {**data, **overrides})

    def requests(self, phone: str = "", phone_number_id: str = "", limit: int = 1000) -> dict:
        """{"count", "accepted", "requests": [...]} of the sends recorded, optionally filtered."""
        return self._get("requests", phone=phone, phone_number_id=phone_number_id, limit=limit)

    def stats(self) -> dict:
        return self._get("stats")
