"""The demo page in a real headless Chromium (Selenium + Debian's chromium/chromium-driver).

Loads `/`, types a text, clicks "Annotate" and checks that displaCy's entity marks and the
anomaly score with its threshold appear; then clicks an example button. A screenshot goes
to the test's tmp dir. Skips with the reason when Selenium or the browser is missing (CI
installs both: see .ci/run and the README).
"""

import shutil

import pytest

from .conftest import SERVE_EXTRA

pytest.importorskip("fastapi", reason=SERVE_EXTRA)
webdriver = pytest.importorskip("selenium.webdriver", reason=SERVE_EXTRA)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no headless browser: apt-get install -y chromium chromium-driver (Debian) to run the demo-page test",
)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,900",
    ):
        options.add_argument(arg)
    # the Debian driver by path: Selenium Manager would try to download one
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER)
    )
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_demo_page_annotates_in_a_browser(browser, live_server, served_nlp, tmp_path):
    text = "Maria Lopez restarted nginx on web-03.prod.acme.net at 03:12 UTC after HTTP 502 errors."
    expected = [(e.text, e.label_) for e in served_nlp(text).ents]
    assert expected, "the test pipeline should find entities in this text"
    score = served_nlp(text)._.anomaly_score

    browser.get(live_server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(
        EC.text_to_be_present_in_element((By.ID, "pipeline"), "transformer, ner, anomaly_scorer")
    )
    box = browser.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)
    browser.find_element(By.ID, "annotate").click()
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#entities mark.entity")))

    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('#entities mark.entity'))"
        ".map(m => [m.firstChild.textContent.trim(), m.querySelector('span').textContent.trim()]);"
    )
    shown = [tuple(pair) for pair in shown]
    assert shown == expected
    anomaly = browser.find_element(By.ID, "anomaly")
    assert f"Anomaly score {score:.3f} (threshold 0.500)" in anomaly.text
    assert float(anomaly.get_attribute("data-score")) == pytest.approx(score, abs=1e-5)
    # no textcat in this pipeline: no intent line (doc.cats holds the anomaly label only)
    assert not browser.find_element(By.ID, "intent").is_displayed()
    path = tmp_path / "demo-page.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000

    # an example button fills the box and annotates it
    example = browser.find_element(By.ID, "example-2")
    example.click()
    wait.until(
        lambda d: d.find_element(By.ID, "text").get_attribute("value").startswith("At 03:14 UTC")
    )
    wait.until(EC.text_to_be_present_in_element((By.ID, "entities"), "firewall on bastion-17"))
    assert browser.find_element(By.ID, "anomaly").text.startswith("Anomaly score")
    browser.save_screenshot(str(tmp_path / "demo-page-example.png"))


def test_demo_page_shows_limit_errors(browser, live_server):
    browser.get(live_server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(EC.text_to_be_present_in_element((By.ID, "pipeline"), "anomaly threshold"))
    box = browser.find_element(By.ID, "text")
    box.clear()
    browser.execute_script("document.getElementById('text').value = '😀'.repeat(500);")
    browser.find_element(By.ID, "annotate").click()
    wait.until(EC.visibility_of_element_located((By.ID, "error")))
    assert "422 (max_symbol_run)" in browser.find_element(By.ID, "error").text


def test_demo_page_highlights_the_anomalous_passage(browser, live_server, served_nlp):
    text = (
        "Maria Lopez restarted nginx on web-03.prod.acme.net at 03:12 UTC.\n"
        "Someone exfiltrated the customer database through an unknown tunnel 😀.\n"
        "The deploy finished and the cache was warmed."
    )
    doc = served_nlp.get_pipe("anomaly_scorer").explain(served_nlp(text))
    top = doc.spans["anomaly"][0]

    browser.get(live_server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(EC.text_to_be_present_in_element((By.ID, "pipeline"), "anomaly threshold"))
    browser.execute_script("document.getElementById('text').value = arguments[0];", text)
    browser.find_element(By.ID, "annotate").click()
    wait.until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "#explanation mark.anomaly-span"))
    )
    mark = browser.find_element(By.CSS_SELECTOR, "#explanation mark.anomaly-span")
    assert mark.text == top.text.strip()
    assert float(mark.get_attribute("data-score")) == pytest.approx(
        doc.spans["anomaly"].attrs["scores"][0], abs=1e-5
    )
    # the whole text is shown, the passage marked inside it
    assert browser.find_element(By.ID, "explanation").text.endswith("the cache was warmed.")
