"""First contact in a real browser (Playwright + Debian's Chromium, see test_browser.py): the saved-voice
picker on a local install, no stale state between actions, downloads named after the take."""
from __future__ import annotations

import re

import pytest

from tests.test_browser import (ARTIFACTS, _browser, _load_with_prompt, _prompt, _serve, _set_slider, open_advanced,
                                upload_prompt)


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
            page.get_by_role("tab", name="① Clone").click()
            # a fresh prompt: clear the clone tab, then pick the saved voice
            page.locator("#prompt-audio button[aria-label='Clear']").first.click()
            page.locator("#prompt-text textarea").fill("")
            open_advanced(page)
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
            open_advanced(page)
            _set_slider(page, "n-candidates", 2)
            page.locator("#clone-btn").click()
            timeline = page.locator("#timeline")
            expect(timeline).to_contain_text("T1 ·", timeout=30000)
            # downloads are named after the take; the live player (AAC) offers none
            expect(page.locator("#cand-1 a[data-testid=download-link]")).to_have_attribute(
                "href", re.compile(r"/T1-clone-seed\d+\.wav$"), timeout=20000)
            live_downloads = "#live-clone a[data-testid=download-link], #live-clone button[title=Download]"
            assert page.locator(live_downloads).count() == 0
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


_TRUNCATED_JS = """() => [...document.querySelectorAll('label span, [data-testid=block-info], button, [role=tab]')]
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().top < window.innerHeight
               && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflow !== 'visible')
  .map(e => e.innerText.trim()).filter(t => t)"""


def test_first_screen_leads(server):
    """At 1280x800 the title, the one-line explanation, the examples and Generate are visible without scrolling,
    the advanced settings are collapsed, and the EN / 中文 switch translates the page; at 390x844 every tab is
    reachable without an overflow menu and Generate comes before the advanced settings."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser, page = _page(p, 1280, 800)
        try:
            page.goto(server["url"])
            expect(page.locator("#engine-note")).to_contain_text("Fake engine (tests)", timeout=20000)
            for sel in ("#title", "#tagline", "#clone-examples", "#clone-btn", "#lang-zh"):
                box = page.locator(sel).first.bounding_box()
                assert box and box["y"] >= 0 and box["y"] + box["height"] <= 800, (sel, box)
            examples = page.locator("#clone-examples button")
            assert examples.count() == 3
            expect(page.locator("#clone-seed")).to_be_hidden()                  # inside the closed Advanced
            assert page.evaluate(_TRUNCATED_JS) == []
            page.screenshot(path=str(ARTIFACTS / "first_screen_1280.png"))
            examples.nth(2).click()                                              # the noisy recording
            expect(page.locator("#target-text textarea")).not_to_have_value("", timeout=10000)
            expect(page.locator("#prompt-text textarea")).to_have_value(re.compile("busy street"))
            page.locator("#lang-zh").click()
            expect(page.locator("#clone-btn")).to_have_text("生成", timeout=10000)
            expect(page.get_by_role("tab", name="② 编辑")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "first_screen_1280_zh.png"))
            page.locator("#lang-en").click()
            expect(page.locator("#clone-btn")).to_have_text("Generate", timeout=10000)
            browser.close()

            browser, page = _page(p, 390, 844)
            page.goto(server["url"])
            expect(page.locator("#engine-note")).to_contain_text("Fake engine (tests)", timeout=20000)
            for name in ("① Clone", "② Edit", "③ Paralinguistic", "④ Script"):
                expect(page.get_by_role("tab", name=name)).to_be_visible()
            assert page.locator("#tabs .overflow-menu:visible, #tabs button[aria-label*=more i]:visible").count() == 0
            gen, adv = (page.locator(s).first.bounding_box() for s in ("#clone-btn", "#clone-advanced"))
            assert gen["y"] < adv["y"]
            assert page.evaluate(_TRUNCATED_JS) == []
            page.screenshot(path=str(ARTIFACTS / "first_screen_390.png"), full_page=True)
        finally:
            page.screenshot(path=str(ARTIFACTS / "last_first_screen.png"), full_page=True)
            browser.close()


def test_sample_script_renders_on_a_fresh_install_and_rows_pick_the_line(server):
    """The Script tab's sample names the example voices, so it renders with an empty library; clicking a row
    of the lines table picks the line (and its take) for Re-roll."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415
    with sync_playwright() as p:
        browser, page = _page(p)
        try:
            page.goto(server["url"])
            expect(page.locator("#engine-note")).to_contain_text("Fake engine (tests)", timeout=20000)
            page.get_by_role("tab", name="④ Script").click()
            expect(page.locator("#script-text textarea")).to_have_value(re.compile(r"^# Speaker.*\nEthan: ", re.S))
            page.locator("#script-render").click()
            expect(page.locator("#script-report")).to_contain_text("3 lines", timeout=60000)
            table = page.locator("#script-lines")
            expect(table).to_contain_text("Mei")
            table.get_by_text("Mei", exact=True).filter(visible=True).first.click()   # row 2, the speaker cell
            expect(page.locator("#script-line input")).to_have_value("2", timeout=10000)
            expect(page.locator("#script-take textarea, #script-take input").first).to_have_value("L2.T1")
            page.locator("#script-reroll").click()
            expect(page.locator("#script-report")).to_contain_text("Line 2 re-rolled", timeout=60000)
            page.screenshot(path=str(ARTIFACTS / "screenshot_script_sample.png"), full_page=True)
        finally:
            page.screenshot(path=str(ARTIFACTS / "last_first_script.png"), full_page=True)
            browser.close()


_AFTER_JS = """sel => { const el = document.querySelector(sel);
  return el ? [getComputedStyle(el, '::after').content, getComputedStyle(el).fontSize] : null; }"""


def _visible_text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def test_computed_text_follows_the_language(server):
    """The engine note, the edit tabs' summary and the script table's headers are computed in Python; a Chinese
    browser sees them in Chinese from the start, and the EN / 中文 switch flips them with the labels."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415
    header = '#script-lines th[title="speaker"] .header.text'
    with sync_playwright() as p:
        browser, page = _page(p, locale="zh-CN")
        try:
            page.goto(server["url"])
            expect(page.locator("#engine-note")).to_contain_text("设备", timeout=20000)
            note = _visible_text(page, "#engine-note")
            assert "device" not in note and "支持：" in note, note
            page.get_by_role("tab", name="② 编辑").click()
            summary = page.locator("#tabs [role=tabpanel]:visible").first
            expect(summary).to_contain_text("还没有选择版本")
            assert "No take selected yet" not in summary.inner_text()
            page.get_by_role("tab", name="④ 脚本").click()
            expect(page.locator(header)).to_be_attached(timeout=10000)
            assert page.evaluate(_AFTER_JS, header) == ['"说话人"', "0px"]

            page.locator("#lang-en").click()
            expect(page.locator("html[data-ui-lang-done=en]")).to_be_attached(timeout=10000)   # tabs relabelled
            expect(page.get_by_role("tab", name="④ Script")).to_be_visible(timeout=10000)
            assert page.evaluate(_AFTER_JS, header)[0] == "none"
            note = _visible_text(page, "#engine-note")
            assert "device" in note and "设备" not in note, note
            page.get_by_role("tab", name="② Edit").click()
            expect(page.locator("#tabs [role=tabpanel]:visible").first).to_contain_text("No take selected yet")
        finally:
            page.screenshot(path=str(ARTIFACTS / "last_first_lang.png"), full_page=True)
            browser.close()


def test_the_noisy_example_prepares_a_denoise_edit(server):
    """The noisy example fills the clone fields and also ② Edit: its recording and transcript under "Start from
    your own recording" and Denoise chosen; the other examples leave ② Edit alone."""
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415
    with sync_playwright() as p:
        browser, page = _page(p)
        try:
            page.goto(server["url"])
            expect(page.locator("#engine-note")).to_contain_text("Fake engine (tests)", timeout=20000)
            examples = page.locator("#clone-examples button")
            examples.nth(0).click()
            expect(page.locator("#prompt-text textarea")).not_to_have_value("", timeout=10000)
            page.get_by_role("tab", name="② Edit").click()
            expect(page.locator("#upload-text textarea")).to_be_hidden()       # its accordion stays closed
            page.get_by_role("tab", name="① Clone").click()
            examples.nth(2).click()
            expect(page.locator("#prompt-text textarea")).to_have_value(re.compile("busy street"), timeout=10000)
            page.get_by_role("tab", name="② Edit").click()
            expect(page.locator("#upload-text textarea")).to_have_value(re.compile("busy street"), timeout=10000)
            expect(page.locator("#upload-audio audio, #upload-audio [data-testid=waveform-x]").first).to_be_attached()
            expect(page.locator("#edit-type input[value=denoise]")).to_be_checked()
        finally:
            page.screenshot(path=str(ARTIFACTS / "last_first_noisy.png"), full_page=True)
            browser.close()
