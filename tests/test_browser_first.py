"""First contact in a real browser (Playwright + Debian's Chromium, see test_browser.py): the saved-voice
picker on a local install, no stale state between actions, downloads named after the take."""
from __future__ import annotations

import re

import pytest

from tests.test_browser import ARTIFACTS, _browser, _load_with_prompt, _prompt, _serve, upload_prompt


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app as on a local install: the voice library (tmp/data) is neither under the working directory
    nor under the system temp dir (TMPDIR moved to tmp/systmp), so Gradio does not serve it by default."""
    systmp = tmp_path_factory.mktemp("systmp")
    yield from _serve(tmp_path_factory, "", {"TMPDIR": str(systmp)})


def _page(p, width=1400, height=1000, locale="en-US"):
    browser = _browser(p)
    return browser, browser.new_page(viewport={"width": width, "height": height}, locale=locale)


def test_saved_voice_picker_fills_the_prompt(server):
    """B2: the voice library lives outside Gradio's allowed paths (STEPEDIT_DATA_DIR); picking a saved voice
    in the clone tab fills prompt audio and transcript instead of "Error"."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415
    with sync_playwright() as p:
        browser, page = _page(p)
        try:
            _load_with_prompt(page, server)
            page.locator("#prompt-text textarea").fill("The words of the saved voice.")
            expect(page.locator("#prompt-audio audio").first).to_be_attached(timeout=20000)
            page.get_by_role("tab", name="④ Script").click()
            page.locator("#voice-name textarea, #voice-name input").first.fill("Zoe")
            page.locator("#voice-save").click()
            expect(page.locator("#voice-list")).to_contain_text("Zoe", timeout=20000)
            page.get_by_role("tab", name="① Voice clone").click()
            # a fresh prompt: clear the clone tab, then pick the saved voice
            page.locator("#prompt-audio button[aria-label='Clear']").first.click()
            page.locator("#prompt-text textarea").fill("")
            advanced = page.locator("#clone-advanced")
            if advanced.count() and not page.locator("#voice-pick").is_visible():
                advanced.get_by_text(re.compile("Advanced")).first.click()
            page.locator("#voice-pick input").click()
            page.get_by_role("option", name="Zoe").click()
            expect(page.locator("#prompt-text textarea")).to_have_value("The words of the saved voice.",
                                                                        timeout=20000)
            expect(page.locator("#prompt-audio audio").first).to_be_attached(timeout=20000)
            assert "Error" not in page.locator("#prompt-audio").inner_text()
            assert "not in allowed_paths" not in (server["tmp"] / "server.log").read_text()
        finally:
            page.screenshot(path=str(ARTIFACTS / "last_first_state.png"), full_page=True)
            browser.close()


def test_no_stale_state(server):
    """A new prompt empties the old transcript; a new run empties the live player (an unstreamed run would
    otherwise leave the previous take there); an exported recipe disappears after the next action."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415
    with sync_playwright() as p:
        browser, page = _page(p)
        try:
            _load_with_prompt(page, server)
            prompt_text = page.locator("#prompt-text textarea")
            prompt_text.fill("The transcript of the first voice.")
            expect(page.locator("#prompt-audio audio").first).to_be_attached(timeout=20000)
            page.locator("#prompt-audio button[aria-label='Clear']").first.click()
            expect(prompt_text).to_have_value("", timeout=10000)
            upload_prompt(page, _prompt(server["tmp"]))
            prompt_text.fill("The transcript of the second voice.")
            page.locator("#target-text textarea").fill("A streamed take first.")
            page.locator("#clone-btn").click()
            timeline = page.locator("#timeline")
            expect(timeline).to_contain_text("T1 ·", timeout=30000)
            # downloads are named after the take; the live player (AAC) offers none
            expect(page.locator("#cand-1 a[data-testid=download-link]")).to_have_attribute(
                "href", re.compile(r"/T1-clone-seed\d+\.wav$"), timeout=20000)
            assert page.locator("#live-clone a[data-testid=download-link], #live-clone button[title=Download]").count() == 0
            page.locator("#clone-stream input").uncheck()
            page.locator("#clone-btn").click()
            expect(timeline).to_contain_text("T3 ·", timeout=30000)
            expect(page.locator("#live-clone [aria-label='Empty value']")).to_be_visible(timeout=10000)
            page.locator("#export-btn").click()
            recipe = page.locator("#recipe-out")
            expect(recipe).to_be_visible(timeout=20000)
            page.locator("#undo-btn").click()
            expect(timeline).not_to_contain_text("T3 ·", timeout=20000)
            expect(recipe).to_be_hidden(timeout=10000)
        finally:
            page.screenshot(path=str(ARTIFACTS / "last_first_state.png"), full_page=True)
            browser.close()
