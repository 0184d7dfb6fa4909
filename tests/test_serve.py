"""`mmcheck serve` in a real headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium): step, step back, and one full walk to a violation."""

from __future__ import annotations

import shutil
import threading

import pytest

from mmcheck.model.policy import resolve
from mmcheck.report.serve import create_app
from mmcheck.scenario.loader import load_scenario

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

VMSPLICE = "scenarios/classics/vmsplice_unmap_child.yaml"


@pytest.fixture
def served():
    sc = load_scenario(VMSPLICE)
    app = create_app(sc, "v5.7", resolve("v5.7"))
    server = make_server("127.0.0.1", 0, app, threaded=True)   # Flask's own server (werkzeug)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", app
    server.shutdown()


@pytest.fixture
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def _depth(driver):
    return int(driver.find_element(By.ID, "depth").text)


def _wait_depth(driver, n):
    WebDriverWait(driver, 20).until(lambda d: _depth(d) == n)


def test_click_steps_back_and_walk_to_the_leak(served, browser, tmp_path):
    url, app = served
    browser.get(url)
    wait = WebDriverWait(browser, 20)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "button.step")))
    first = browser.find_elements(By.CSS_SELECTOR, "button.step")[0]
    assert "A.main" in first.text and "dup_mmap" in first.text   # fork: the only first step
    first.click()
    _wait_depth(browser, 1)
    assert browser.find_elements(By.CSS_SELECTOR, "tr.changed")     # what the step changed
    assert len(browser.find_elements(By.CSS_SELECTOR, "#history li")) == 1
    browser.find_element(By.ID, "back").click()
    _wait_depth(browser, 0)
    # jump to the shortest counterexample of no-leak and walk it to the end
    browser.find_element(By.ID, "load-cex").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR,
                                           "button.jump[data-property='no-leak']"))).click()
    wait.until(lambda d: "walking the shortest counterexample of no-leak"
               in d.find_element(By.ID, "following").text)
    for n in range(1, 13):   # reference T1.2 under v5.7: 12 steps (docs/verdicts.md)
        planned = browser.find_elements(By.CSS_SELECTOR, "button.step.planned")
        assert len(planned) == 1
        browser.find_element(By.ID, "follow").click()
        _wait_depth(browser, n)
    violated = browser.find_element(By.ID, "violated").text
    assert "no-leak" in violated and "not its data" in violated
    browser.save_screenshot(str(tmp_path / "explorer.png"))


def test_cli_refuses_an_unknown_policy():
    from click.testing import CliRunner

    from mmcheck.cli import main

    r = CliRunner().invoke(main, ["serve", VMSPLICE, "-p", "v9.9"])
    assert r.exit_code == 2 and "unknown policy 'v9.9'" in r.output
