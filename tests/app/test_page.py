"""The page in a real Chromium (Selenium), against a real ``imagebind-sdk app`` process.

One server and one browser for the module. A failing test saves a screenshot
(see ``page`` in conftest.py); ``test_readme_screenshot`` writes docs/img/app.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ASSETS

from .conftest import API_KEY, REPO, httpx

WAIT_S = 60
README_SHOT = REPO / "docs" / "img" / "app.png"


def wait(driver, condition, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def results(driver) -> list:
    """The result elements now shown."""
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#results [data-id]")


def shown(driver) -> list[dict]:
    """The hooks of every result now shown (read in one script: the grid is replaced on each search)."""
    return driver.execute_script("return [...document.querySelectorAll('#results [data-id]')].map(e => ({...e.dataset}))")


def searches(driver) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.searches || 0)"))


def open_page(driver, url: str) -> None:
    driver.get(url + "/")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def set_top_k(driver, value: int) -> None:
    from selenium.webdriver.support.ui import Select

    Select(by_id(driver, "top-k")).select_by_visible_text(str(value))


def answered(driver, before: int) -> list[dict]:
    """Wait until the page shows the answer after ``before`` searches; the results' hooks."""
    wait(driver, lambda d: searches(d) > before)
    return shown(driver)


def run_search(driver) -> list[dict]:
    before = searches(driver)
    by_id(driver, "search-button").click()
    return answered(driver, before)


def text_search(driver, text: str, top_k: int = 10) -> list[dict]:
    box = by_id(driver, "query-text")
    box.clear()
    box.send_keys(text)
    set_top_k(driver, top_k)
    return run_search(driver)


def test_uploaded_indexed_image_comes_back_top_1(page, app_server):
    open_page(page, app_server.url)
    dog = ASSETS / "dog_image.jpg"
    by_id(page, "query-file").send_keys(str(dog))
    wait(page, lambda d: d.find_elements("css selector", "#chips .chip"))
    top = run_search(page)[0]
    assert top["path"] == str(dog) and top["kind"] == "vision"
    assert float(top["score"]) == pytest.approx(1.0, abs=1e-4)
    assert by_id(page, "error").get_attribute("hidden") is not None
    # The thumbnail loaded (a decoded JPEG, not a broken image).
    assert wait(page, lambda d: d.execute_script(
        "const i = document.querySelector('#results [data-id] img'); return i && i.complete && i.naturalWidth > 0"))


def test_text_query_lists_top_k_by_keyboard(page, app_server):
    from selenium.webdriver.common.keys import Keys

    open_page(page, app_server.url)
    set_top_k(page, 5)
    before = searches(page)
    by_id(page, "query-text").send_keys("a bird singing", Keys.ENTER)  # Enter submits: no mouse needed
    cards = answered(page, before)
    assert len(cards) == 5
    scores = [float(c["score"]) for c in cards]
    assert scores == sorted(scores, reverse=True)
    # Enter on a focused result asks for "more like this": the item itself comes back first.
    second = results(page)[1]
    page.execute_script("arguments[0].focus()", second)
    before = searches(page)
    second.send_keys(Keys.ENTER)
    again = answered(page, before)
    assert again[0]["id"] == cards[1]["id"] and float(again[0]["score"]) == pytest.approx(1.0, abs=1e-4)


def test_audio_result_has_a_player_and_its_media_answers_206(page, app_server):
    open_page(page, app_server.url)
    for box in page.find_elements("css selector", "#kinds input"):
        if (box.get_attribute("value") == "audio") != box.is_selected():
            box.click()
    cards = text_search(page, "a dog barking", top_k=5)
    assert {c["kind"] for c in cards} == {"audio"}
    player = wait(page, lambda d: d.find_elements("css selector", "#results [data-kind=audio] audio[src]"))[0]
    src = player.get_attribute("src")
    assert "/v1/items/" in src and "#t=" in src  # starts at the window's start
    status = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0].split('#')[0], {headers: {Range: 'bytes=0-99'}})"
        ".then(r => r.arrayBuffer().then(b => done([r.status, b.byteLength, r.headers.get('content-range')])))",
        src)
    assert status[0] == 206 and status[1] == 100 and status[2].startswith("bytes 0-99/")


def test_heatmap_renders_for_three_selected_items(page, app_server):
    open_page(page, app_server.url)
    text_search(page, "a car", top_k=10)
    for card in results(page)[:3]:
        card.find_element("css selector", "input.select").click()
    cells = wait(page, lambda d: len(d.find_elements("css selector", "#heatmap td[data-value]")) == 9
                 and d.find_elements("css selector", "#heatmap td[data-value]"))
    diagonal = [float(c.get_attribute("data-value")) for c in cells if c.get_attribute("data-row") == c.get_attribute("data-col")]
    assert diagonal == pytest.approx([1.0, 1.0, 1.0], abs=1e-4)


def test_zero_shot_probabilities_sum_to_1(page, app_server):
    open_page(page, app_server.url)
    text_search(page, "a dog", top_k=5)
    results(page)[0].find_element("css selector", "input.select").click()
    labels = by_id(page, "labels-input")
    labels.clear()
    labels.send_keys("dog, car, bird, rain")
    by_id(page, "zero-shot-button").click()
    bars = wait(page, lambda d: d.find_elements("css selector", "#zero-shot [data-probability]"))
    assert sorted(b.get_attribute("data-label") for b in bars) == ["bird", "car", "dog", "rain"]
    assert sum(float(b.get_attribute("data-probability")) for b in bars) == pytest.approx(1.0, abs=1e-6)


def test_corrupt_upload_shows_the_error(page, app_server, tmp_path: Path):
    open_page(page, app_server.url)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    by_id(page, "query-file").send_keys(str(broken))
    wait(page, lambda d: d.find_elements("css selector", "#chips .chip"))
    by_id(page, "search-button").click()
    error = wait(page, lambda d: by_id(d, "error").is_displayed() and by_id(d, "error"))
    assert "could not read this vision input" in error.text
    assert "Traceback" not in page.page_source
    assert by_id(page, "query-text").is_displayed()  # the page is still there


def test_mic_and_webcam_through_the_browser_apis(page, app_server):
    """Chromium's fake devices: a recorded beep and a webcam snapshot become query terms that search."""
    open_page(page, app_server.url)
    by_id(page, "mic").click()
    wait(page, lambda d: by_id(d, "mic").get_attribute("aria-pressed") == "true")
    page.execute_script("return new Promise(r => setTimeout(r, 1500))")
    by_id(page, "mic").click()
    wait(page, lambda d: "microphone" in by_id(d, "chips").text)
    by_id(page, "webcam").click()
    wait(page, lambda d: by_id(d, "snap").is_displayed()
         and d.execute_script("return document.getElementById('camera').videoWidth > 0"))
    by_id(page, "snap").click()
    wait(page, lambda d: "webcam.jpg" in by_id(d, "chips").text)
    cards = run_search(page)
    assert cards and by_id(page, "error").get_attribute("hidden") is not None


def test_api_key_is_asked_once(page, key_server):
    page.get(key_server.url + "/")
    panel = wait(page, lambda d: by_id(d, "key-panel").is_displayed() and by_id(d, "key-panel"))
    assert "API key" in panel.text
    assert httpx.post(key_server.url + "/v1/search", json={"text": "dog"}).status_code == 401
    by_id(page, "api-key").send_keys(API_KEY)
    by_id(page, "key-button").click()
    wait(page, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    cards = text_search(page, "a dog", top_k=5)
    assert len(cards) == 5
    # Media elements cannot send the key: the page fetches them with it (blob URLs).
    assert wait(page, lambda d: d.execute_script(
        "const i = document.querySelector('#results img'); return !i || (i.complete && i.naturalWidth > 0)"))
    page.refresh()  # asked once: the key is remembered
    wait(page, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    assert not by_id(page, "key-panel").is_displayed()
    page.execute_script("localStorage.clear()")


def test_phone_width_and_offline(page, app_server):
    page.set_window_size(390, 844)
    try:
        open_page(page, app_server.url)
        text_search(page, "a bird", top_k=5)
        overflow = page.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
        origins = page.execute_script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).origin)")
        assert set(origins) <= {app_server.url}, origins  # nothing but this server: no CDN, fonts, analytics
    finally:
        page.set_window_size(1280, 900)


def test_readme_screenshot(page, app_server):
    """docs/img/app.png, shown in the README: a text search, zero-shot bars and a heatmap."""
    page.set_window_size(1400, 1000)
    open_page(page, app_server.url)
    text_search(page, "a dog", top_k=10)
    for card in results(page)[:4]:
        card.find_element("css selector", "input.select").click()
    wait(page, lambda d: len(d.find_elements("css selector", "#heatmap td")) == 16)
    by_id(page, "zero-shot-button").click()
    wait(page, lambda d: d.find_elements("css selector", "#zero-shot [data-probability]"))
    wait(page, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"))
    README_SHOT.parent.mkdir(parents=True, exist_ok=True)
    assert page.save_screenshot(str(README_SHOT))
    assert README_SHOT.stat().st_size > 10_000
