"""The playground at ``/`` in a real headless Chromium (the system's ``chromium``, driven by
playwright; no browser is ever downloaded) against the shared fleet: the page loads cleanly,
speaks, transcribes jfk.flac, draws VAD regions, shows the envelope's message for a bad input
and lists the running workers.

With ``SPEECHFLEET_SCREENSHOTS=<folder>`` the tests also save the README's screenshots there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fleet import FIXTURES

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = os.environ.get("SPEECHFLEET_SCREENSHOTS")
WAIT_MS = 180_000  # a job on a busy two-core machine


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium on this machine (.ci/run installs Debian's)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, fleet):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    opened.problems = []  # console errors and uncaught exceptions
    opened.on("console", lambda message: message.type == "error" and opened.problems.append(message.text))
    opened.on("pageerror", lambda error: opened.problems.append(str(error)))
    opened.goto(f"{fleet.base_url}/")
    opened.wait_for_selector("body[data-ready=true]")
    yield opened
    context.close()


def _tab(page, title: str) -> None:
    page.click(f"#tabs button:text-is('{title}')")


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_the_page_loads_without_console_errors(page):
    titles = page.locator("#tabs button").all_inner_texts()
    for expected in ("Text to speech", "Speech to text", "Voice activity", "Speaker similarity",
                     "Voice conversion", "Denoise / restore", "Voice library", "Fleet"):
        assert expected in titles
    assert "piper" in page.locator("#tts-model option").all_inner_texts()
    assert page.problems == []


def test_speech_is_generated_into_a_playable_audio_element(page):
    _tab(page, "Text to speech")
    page.select_option("#tts-model", "piper")
    page.select_option("#tts-format", "wav")
    page.fill("#tts-text", "The browser asked the fleet to say this.")
    page.click("#tts-go")
    page.wait_for_function("(document.getElementById('tts-audio').readyState >= 1"
                           " && document.getElementById('tts-audio').duration > 0.5)"
                           " || document.getElementById('tts-error').textContent.length > 0", timeout=WAIT_MS)
    assert page.inner_text("#tts-error") == "", page.problems
    duration = page.evaluate("document.getElementById('tts-audio').duration")
    assert 0.5 < duration < 30
    assert page.get_attribute("#tts-download", "download") == "speech.wav"
    assert page.inner_text("#tts-error") == ""
    _shot(page, "playground-tts")
    assert page.problems == []


def test_an_uploaded_recording_is_transcribed(page):
    _tab(page, "Speech to text")
    page.select_option("#stt-model", "whisper")
    page.set_input_files("#stt-file", str(FIXTURES / "jfk.flac"))
    page.click("#stt-go")
    page.wait_for_function("document.getElementById('stt-text').textContent.length > 0"
                           " || document.getElementById('stt-error').textContent.length > 0", timeout=WAIT_MS)
    assert page.inner_text("#stt-error") == ""
    assert "ask not what your country can do for you" in page.inner_text("#stt-text").lower()
    assert page.locator("#stt-words span").count() >= 15  # word timestamps, clickable
    assert "-->" in page.inner_text("#stt-subtitles")
    _shot(page, "playground-stt")
    assert page.problems == []


def test_vad_regions_are_drawn_over_the_waveform(page):
    _tab(page, "Voice activity")
    page.select_option("#vad-model", "silero-vad")
    page.set_input_files("#vad-file", str(FIXTURES / "jfk.flac"))
    page.click("#vad-go")
    page.wait_for_function("Number(document.getElementById('vad-canvas').dataset.regions) > 0"
                           " || document.getElementById('vad-error').textContent.length > 0", timeout=WAIT_MS)
    assert page.inner_text("#vad-error") == ""
    # the regions' green is on the canvas, and not everywhere (jfk.flac starts with silence)
    green = page.evaluate("""() => {
        const canvas = document.getElementById('vad-canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, 1).data;
        let count = 0;
        for (let i = 0; i < pixels.length; i += 4) if (pixels[i + 1] > pixels[i] + 40) count++;
        return count / canvas.width;
    }""")
    assert 0.2 < green < 0.98
    assert "speech region" in page.inner_text("#vad-summary")
    _shot(page, "playground-vad")
    assert page.problems == []


def test_a_bad_input_shows_the_envelope_message(page):
    _tab(page, "Text to speech")
    page.select_option("#tts-model", "piper")
    page.fill("#tts-text", "   ")
    page.click("#tts-go")
    page.wait_for_function("document.getElementById('tts-error').textContent.length > 0")
    assert page.inner_text("#tts-error") == "input is empty: there is nothing to say"


def test_the_fleet_view_shows_the_running_workers_and_this_browsers_jobs(page):
    _tab(page, "Voice activity")
    page.select_option("#vad-model", "silero-vad")
    page.set_input_files("#vad-file", str(FIXTURES / "cmu_arctic_us_aew_a0001.wav"))
    page.click("#vad-go")
    page.wait_for_function("document.getElementById('vad-summary').textContent.length > 0"
                           " || document.getElementById('vad-error').textContent.length > 0", timeout=WAIT_MS)
    _tab(page, "Fleet")
    page.wait_for_function("[...document.querySelectorAll('#fleet-jobs tr')].some("
                           "row => row.textContent.includes('succeeded'))")
    job = page.locator("#fleet-jobs tr").first.inner_text()
    assert "vad silero-vad" in job and "silero-vad [succeeded]" in job and " ms" in job
    page.wait_for_function("document.querySelectorAll('#fleet-models tr.live').length > 0")
    rows = {row.locator("td").nth(0).inner_text(): row for row in page.locator("#fleet-models tr").all()}
    assert {"silero-vad", "piper", "whisper"} <= set(rows)
    assert int(rows["piper"].locator("td").nth(3).inner_text()) >= 1
    assert rows["piper"].locator("td").nth(4).inner_text().strip()  # the worker's id
    _shot(page, "playground-fleet")
    assert page.problems == []
