"""What `vigor demo` prints: every place a newcomer can go, and how to get in."""

from __future__ import annotations

from pathlib import Path

from server.demo import ADMIN_EMAIL, ADMIN_PASSWORD, DemoReport


def test_a_first_run_prints_the_urls_the_admin_login_and_the_keys() -> None:
    report = DemoReport(True, {"hooli": "vgl_hooli-key"}, Path("/srv/instance/demo-licenses.json"))
    text = report.describe("http://127.0.0.1:8000")
    for url in ("/healthz", "/api/v1/root.json", "/api/v1/openapi.json", "/admin/", "/portal/"):
        assert f"http://127.0.0.1:8000{url}" in text
    assert f"{ADMIN_EMAIL} / {ADMIN_PASSWORD}" in text
    assert "hooli" in text and "vgl_hooli-key" in text


def test_a_second_run_points_at_the_saved_keys_instead_of_showing_them() -> None:
    report = DemoReport(False, {}, Path("/srv/instance/demo-licenses.json"))
    text = report.describe("http://127.0.0.1:8000")
    assert "http://127.0.0.1:8000/portal/" in text
    assert "/srv/instance/demo-licenses.json" in text and "vgl_" not in text


def test_the_banner_names_the_worker_the_demo_started() -> None:
    report = DemoReport(False, {}, Path("/srv/instance/demo-licenses.json"))
    text = report.describe("http://127.0.0.1:8000", worker_pid=4242)
    assert "Worker:" in text and "4242" in text
    assert "http://127.0.0.1:8000/admin/jobs" in text
    assert "Worker:" not in report.describe("http://127.0.0.1:8000")
