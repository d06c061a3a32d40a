"""A project made by ``microback new``, in a real browser: sign-up, log-in, a form post, the
flashed message it leaves, and the stylesheet the page loads from the app's static files.

Run with ``pytest -m browser`` (``.ci/run`` does); the project is served by ``microback
serve`` on SQLite (``new_project_server`` in conftest.py).
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from .test_accounts import path_of, submit

pytestmark = pytest.mark.browser

EMAIL = "ada@example.org"
PASSWORD = "correct horse battery staple"


def fill_account_form(browser: WebDriver, url: str, email: str, password: str) -> None:
    browser.get(url)
    form = browser.find_element(By.ID, "account")
    form.find_element(By.NAME, "email").send_keys(email)
    form.find_element(By.NAME, "password").send_keys(password)
    submit(browser, form.find_element(By.TAG_NAME, "button"))


def flashes(browser: WebDriver) -> list[str]:
    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, "p.flash")]


def background(browser: WebDriver, selector: str) -> str:
    element = browser.find_element(By.CSS_SELECTOR, selector)
    return str(element.value_of_css_property("background-color"))


def test_sign_up_add_a_task_log_out_and_in(browser: WebDriver, new_project_server: str) -> None:
    browser.delete_all_cookies()

    # Sign up: the account is logged in, and the task page greets it once.
    fill_account_form(browser, new_project_server + "/signup", EMAIL, PASSWORD)
    assert path_of(browser) == "/tasks"
    assert flashes(browser) == [f"Welcome, {EMAIL}!"]
    # The stylesheet, served from the app's static folder, styles the message.
    assert background(browser, "p.flash.success") == "rgba(230, 244, 234, 1)"
    stylesheets = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)"
    )
    assert "/static/style.css" in stylesheets
    browser.refresh()
    assert flashes(browser) == []

    # A form post with its CSRF field: the task is listed, and a flashed message says so.
    form = browser.find_element(By.ID, "new-task")
    form.find_element(By.NAME, "title").send_keys("Water the <plants>")
    submit(browser, form.find_element(By.TAG_NAME, "button"))
    assert path_of(browser) == "/tasks"
    assert flashes(browser) == ["Added “Water the <plants>”."]
    tasks = browser.find_elements(By.CSS_SELECTOR, "ul.tasks li")
    assert [task.text for task in tasks] == ["Water the <plants>"]

    # The same form with a forged token is refused, and nothing is added.
    browser.execute_script(
        "document.querySelector('#new-task input[name=csrf_token]').value = 'forged'"
    )
    form = browser.find_element(By.ID, "new-task")
    form.find_element(By.NAME, "title").send_keys("not from this site")
    submit(browser, form.find_element(By.TAG_NAME, "button"))
    assert browser.find_element(By.TAG_NAME, "body").text == "Forbidden\nCSRF token incorrect"
    browser.get(new_project_server + "/tasks")
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "ul.tasks li")] == [
        "Water the <plants>"
    ]

    # Log out, then a wrong password, then the right one.
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#logout button"))
    assert path_of(browser) == "/login"
    browser.get(new_project_server + "/tasks")
    assert path_of(browser) == "/login"
    fill_account_form(browser, new_project_server + "/login", EMAIL, "not the password")
    assert flashes(browser) == ["Wrong e-mail address or password."]
    fill_account_form(browser, new_project_server + "/login", EMAIL, PASSWORD)
    assert path_of(browser) == "/tasks"
    assert flashes(browser) == ["You are logged in."]
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "ul.tasks li")] == [
        "Water the <plants>"
    ]
