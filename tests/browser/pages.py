"""What a person does on the pages, as steps the browser tests read like stories."""

from __future__ import annotations

import time

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

TIMEOUT = 20


def _left_document(old):
    """Wait condition: `old` belongs to a page the browser has left. Chromium sometimes says so
    with an inspector error ("Node with given id does not belong to the document") instead of
    a stale-element error, which `ec.staleness_of` does not catch."""
    def check(_driver):
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    return check


class Pages:
    def __init__(self, driver, live):
        self.d = driver
        self.live = live

    # -- navigation ------------------------------------------------------------------------
    def open(self, path: str):
        self.d.get(self.live.url + path)
        return self

    def path(self) -> str:
        return self.d.current_url.removeprefix(self.live.url)

    def find(self, css: str):
        return WebDriverWait(self.d, TIMEOUT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def all(self, css: str):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def click(self, css: str):
        old = self.d.find_element(By.TAG_NAME, "html")
        WebDriverWait(self.d, TIMEOUT).until(ec.element_to_be_clickable((By.CSS_SELECTOR, css))).click()
        return old

    def click_and_load(self, css: str):
        old = self.click(css)
        WebDriverWait(self.d, TIMEOUT).until(_left_document(old))

    def type(self, css: str, value: str):
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def choose(self, css: str, value: str):
        Select(self.find(css)).select_by_value(value)

    def wait_for(self, predicate, message: str = ""):
        # htmx swaps parts of the page while we look: a vanished element means "look again".
        return WebDriverWait(self.d, TIMEOUT, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda d: predicate(), message)

    def until_text(self, css: str, wanted: str):
        self.wait_for(lambda: any(wanted in e.text for e in self.all(css)),
                      f"{wanted!r} never appeared in {css}")

    def reload_until(self, css: str, wanted: str, seconds: float = TIMEOUT):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if any(wanted in e.text for e in self.all(css)):
                return
            time.sleep(0.5)
            self.d.refresh()
        raise AssertionError(f"{wanted!r} never appeared in {css} at {self.d.current_url}")

    # -- people ----------------------------------------------------------------------------
    def sign_in(self, subject: str, tenant: str = "demo-acme", staff: bool = False):
        self.open("/advisor/login" if staff else f"/login?tenant={tenant}")
        self.click_and_load(f'[data-subject="{subject}"]')
        return self

    def sign_out(self):
        self.click_and_load("#sign-out")
        return self

    def switch_language(self, code: str):
        self.click_and_load(f'.lang button[value="{code}"]')
        return self
