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
