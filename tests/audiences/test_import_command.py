"""`manage.py import_audience`: the same ingest for scripts, a JSON summary last."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audiences.models import Audience
from tests.factories import OrganizationFactory

from .helpers import csv_bytes, mixed_csv

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command("import_audience", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def test_import_prints_the_audience_and_its_counts_as_json(tmp_path, settings):
    settings.AUDIENCE_INGEST_BATCH_SIZE = 4
    org = OrganizationFactory(slug="acme")
    path = tmp_path / "leads.csv"
    path.write_bytes(mixed_csv())

    out, err, error = run(str(path), "--org", "acme", "--name", "Q3", "--default-region", "BR")

    assert error is None
    summary = json.loads(out.strip().splitlines()[-1])
    audience = Audience.objects.get(pk=summary["audience_id"])
    assert (audience.organization, audience.name) == (org, "Q3")
    assert summary == {
        "audience_id": audience.pk,
        "status": "ready",
        "error": "",
        "total_rows": 11,
        "counts": {
            "ok": 6,
            "invalid_phone": 2,
            "duplicate": 2,
            "ineligible_geo": 1,
            "invalid_time_zone": 0,
            "limited_reporting": 3,
        },
    }
    assert "100.0%" in err  # the progress bar reached the end


def test_import_with_a_named_phone_column(tmp_path):
    OrganizationFactory(slug="acme")
    path = tmp_path / "leads.csv"
    path.write_bytes(csv_bytes(["name", "Handy"], [["Jörg", "+49 151 23456789"]]))

    out, _, error = run(str(path), "--org", "acme", "--name", "DE", "--phone-column", "Handy")

    assert error is None
    assert json.loads(out.splitlines()[-1])["counts"]["ok"] == 1


def test_a_failed_import_still_prints_json_and_exits_with_the_error(tmp_path):
    OrganizationFactory(slug="acme")
    path = tmp_path / "leads.csv"
    path.write_bytes(b"name\r\nAna\r\n")

    out, _, error = run(str(path), "--org", "acme", "--name", "No phones")

    summary = json.loads(out.splitlines()[-1])
    assert summary["status"] == "failed"
    assert summary["error"].startswith("The file has no phone column")
    assert str(error) == summary["error"]


def test_an_unknown_organization_is_an_error(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(mixed_csv())

    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        call_command("import_audience", str(path), "--org", "nope", "--name", "X")
    assert not Audience.objects.exists()
