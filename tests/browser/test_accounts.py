"""examples/accounts in a real browser: sign-up, log-in, CSRF-protected forms, log-out.

What a person does with the example, as Chromium does it: real cookies (``HttpOnly``,
``SameSite``), real form posts with the hidden CSRF field, real redirects. Run with
``pytest -m browser`` (``.ci/run`` does).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.browser

EMAIL = "ada@example.org"
PASSWORD = "correct horse battery staple"


def submit(browser: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait for the page it leads to: a click returns before the
    navigation it starts has always finished, and reading the URL then sees the old page."""
    page = browser.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(browser, 10).until(lambda _: is_gone(page))


def is_gone(element: WebElement) -> bool:
    """Whether ``element``'s page has been left. Mid-navigation, chromedriver may say so with
    "Node ... does not belong to the document" instead of a stale-element error (seen once a
    page loads a stylesheet), which selenium's ``staleness_of`` lets through as a failure."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in (exc.msg or ""):
            return True
        raise
    return False


def path_of(browser: WebDriver) -> str:
    return urlsplit(browser.current_url).path


def submit_account_form(browser: WebDriver, url: str, email: str, password: str) -> None:
    browser.get(url)
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(password)
    submit(browser, browser.find_element(By.TAG_NAME, "button"))


def form(browser: WebDriver, action: str):
    return browser.find_element(By.CSS_SELECTOR, f'form[action="{action}"]')


def note_texts(browser: WebDriver) -> list[str]:
    return [
        area.get_property("value")
        for area in browser.find_elements(By.CSS_SELECTOR, 'li textarea[name="text"]')
    ]


def add_note(browser: WebDriver, text: str) -> None:
    add = form(browser, "/notes")
    add.find_element(By.NAME, "text").send_keys(text)
    submit(browser, add.find_element(By.TAG_NAME, "button"))


def test_sign_up_log_in_forms_and_log_out(browser: WebDriver, accounts_server: str) -> None:
    browser.delete_all_cookies()

    # Sign up: the form logs the new account in and lands on its (empty) note page.
    submit_account_form(browser, accounts_server + "/signup", EMAIL, PASSWORD)
    assert path_of(browser) == "/notes"
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Notes of {EMAIL}"
    assert note_texts(browser) == []
    cookies = browser.get_cookies()  # the session (which holds the CSRF secret), no other
    assert [(c["httpOnly"], c["sameSite"]) for c in cookies] == [(True, "Lax")]

    # A CSRF-protected form: add a note, then edit it in place.
    add_note(browser, "buy milk")
    assert path_of(browser) == "/notes"
    assert note_texts(browser) == ["buy milk"]
    edit = browser.find_element(By.CSS_SELECTOR, "li form")
    area = edit.find_element(By.NAME, "text")
    area.clear()
    area.send_keys("buy oat milk")
    submit(browser, edit.find_element(By.TAG_NAME, "button"))
    assert note_texts(browser) == ["buy oat milk"]

    # The same form with a forged token is refused, and nothing is written.
    browser.execute_script(
        "document.querySelector('form[action=\"/notes\"] input[name=csrf_token]').value = 'forged'"
    )
    add_note(browser, "not from this site")
    assert "403" in browser.title or "403" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(accounts_server + "/notes")
    assert note_texts(browser) == ["buy oat milk"]

    # Log out: the note page now sends the browser to the login form.
    submit(browser, form(browser, "/logout").find_element(By.TAG_NAME, "button"))
    assert path_of(browser) == "/login"
    browser.get(accounts_server + "/notes")
    assert path_of(browser) == "/login"

    # A wrong password is refused on the form; the right one lands back on the notes.
    submit_account_form(browser, accounts_server + "/login", EMAIL, "not the password")
    assert browser.find_element(By.CLASS_NAME, "error").text == "wrong e-mail address or password"
    submit_account_form(browser, accounts_server + "/login", EMAIL, PASSWORD)
    assert path_of(browser) == "/notes"
    assert note_texts(browser) == ["buy oat milk"]

    # Delete, through its own CSRF-protected form.
    delete = browser.find_elements(By.CSS_SELECTOR, "li form")[1]
    submit(browser, delete.find_element(By.TAG_NAME, "button"))
    assert note_texts(browser) == []
    submit(browser, form(browser, "/logout").find_element(By.TAG_NAME, "button"))
    assert path_of(browser) == "/login"


def test_a_cookie_copied_before_log_out_is_refused_after_it(
    browser: WebDriver, accounts_server: str
) -> None:
    email = "grace@example.org"
    browser.delete_all_cookies()
    submit_account_form(browser, accounts_server + "/signup", email, PASSWORD)
    assert path_of(browser) == "/notes"
    copied = browser.get_cookies()  # what a thief (or a shared computer) keeps

    submit(browser, form(browser, "/logout").find_element(By.TAG_NAME, "button"))
    assert path_of(browser) == "/login"

    # Put the old cookie back, as a replay would: the note page must not open.
    browser.delete_all_cookies()
    for cookie in copied:
        browser.add_cookie({k: cookie[k] for k in ("name", "value", "path", "httpOnly")})
    browser.get(accounts_server + "/notes")
    assert path_of(browser) == "/login"
    assert browser.find_elements(By.NAME, "password")
