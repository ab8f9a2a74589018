"""The README's screenshot of the demo page: serve a pipeline, annotate an example, save a PNG.

Uses headless Chromium through Selenium and Debian's chromedriver, like
tests/serve/test_browser.py; the server listens on 127.0.0.1 and is stopped at the end.

    python benchmarks/serve_screenshot.py training/model-calibrated docs/serve-demo.png
"""

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve_load import Server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument(
        "--example", type=int, default=1, help="Which example button to click (1 or 2)"
    )
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1000,780",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    server = Server(args.pipeline)
    driver = None
    try:
        server.wait_ready()
        driver = webdriver.Chrome(
            options=options,
            service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")),
        )
        driver.get(f"http://127.0.0.1:{server.port}/")
        wait = WebDriverWait(driver, 60)
        button = wait.until(EC.element_to_be_clickable((By.ID, f"example-{args.example}")))
        button.click()
        wait.until(EC.visibility_of_element_located((By.ID, "result")))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.output))
        print(f"Wrote {args.output}: {driver.find_element(By.ID, 'anomaly').text}")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


if __name__ == "__main__":
    main()
