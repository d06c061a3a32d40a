"""The docs page (enable_openapi) in a real browser against a real ``microback serve``:
Swagger UI loads from the app alone, lists every operation, and "Try it out" gets the app's
real answer. Run with ``pytest -m browser`` (``.ci/run`` does)."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser


def operations(browser: WebDriver) -> list[tuple[str, str]]:
    return [
        (
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
            block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text,
        )
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    ]


def test_the_docs_page_lists_every_operation_and_tries_one_for_real(
    browser: WebDriver, openapi_server: str
) -> None:
    browser.get(f"{openapi_server}/docs")
    wait = WebDriverWait(browser, 20)
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))

    assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("Notes")
    assert sorted(operations(browser)) == [
        ("GET", "/notes"),
        ("GET", "/notes/{note_id}"),
        ("POST", "/notes"),
    ]
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert loaded and all(url.startswith(openapi_server) for url in loaded), loaded

    show = browser.find_element(By.CSS_SELECTOR, "#operations-default-show_note")
    show.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait.until(lambda _: show.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    show.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    field = show.find_element(By.CSS_SELECTOR, 'tr[data-param-name="note_id"] input')
    field.send_keys("1")
    show.find_element(By.CSS_SELECTOR, "button.execute").click()
    live = wait.until(
        lambda _: show.find_elements(By.CSS_SELECTOR, ".live-responses-table .response")
    )[0]

    assert live.find_element(By.CSS_SELECTOR, ".response-col_status").text.startswith("200")
    body = live.find_element(By.CSS_SELECTOR, ".response-col_description pre").text
    assert json.loads(body) == {"id": 1, "text": "milk"}
    url = show.find_element(By.CSS_SELECTOR, ".request-url pre").text
    assert url == f"{openapi_server}/notes/1"
