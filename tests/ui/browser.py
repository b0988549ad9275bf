"""Debian's chromium, headless, driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach the internet.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    try:
        yield browser
    finally:
        browser.close()


def log_in(page, base: str, user: str, password: str, timeout_ms: int = 30000) -> None:
    """Log in on Airflow's own login page; returns once Airflow's page (its navigation) is shown, so a
    page opened next is not taken away by the login's redirect."""
    page.goto(f"{base}/")
    page.wait_for_url("**/auth/login**", timeout=timeout_ms)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.locator("button[type=submit]").click()
    page.get_by_role("link", name="Parent provisioning").first.wait_for(timeout=timeout_ms)
