"""Real ``imagebind-sdk app`` / ``serve --index`` processes over the sample assets, and a real Chromium.

One ``app`` server indexes a few sample files (tiny checkpoint, windows on) once per
session; the API tests and the browser tests share it. The API-key tests start
``serve --index`` on the same index (no embedding, seconds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason='pip install "imagebind-sdk[app]"')
httpx = pytest.importorskip("httpx", reason="pip install httpx")

from conftest import ASSETS, GOLDEN, TINY  # noqa: E402
from server.conftest import ServerProcess, free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180.0
API_KEY = "page-test-key"
# A few files of each kind the page shows differently; windows make audio/video items with times.
FILES = ("dog_image.jpg", "car_image.jpg", "bird_image.jpg", "dog_audio.wav", "car_audio.wav",
         "bird_audio.wav", "video/wind_noise.mp4", "imu/imu1_2k.csv")


class AppProcess(ServerProcess):
    """``python -m imagebind_sdk COMMAND ...`` on a free port; ``wait_ready`` until the model is
    loaded and the files indexed, recording the progress seen; ``stop()`` as ServerProcess."""

    start_timeout_s = START_TIMEOUT_S

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
        cmd = [sys.executable, "-m", "imagebind_sdk", *args, "--checkpoint", str(TINY),
               "--port", str(self.port), "--log-level", "warning"]
        self.started = time.monotonic()
        self.seen: list[tuple[str, int, int]] = []  # (stage, done, total) reported while starting
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def while_starting(self) -> None:
        status = httpx.get(self.url + "/v1/app/status", timeout=1)
        if status.status_code == 200:
            body = status.json()
            self.seen.append((body["stage"], body["done"], body["total"]))


@pytest.fixture(scope="session")
def app_files() -> list[Path]:
    if not (GOLDEN / "embeddings.safetensors").exists() or not ASSETS.is_dir():
        pytest.skip(f"golden data or sample assets not found at {GOLDEN} / {ASSETS}")
    return [ASSETS / name for name in FILES]


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("app") / "index"


@pytest.fixture(scope="session")
def app_server(app_files: list[Path], index_dir: Path):
    proc = AppProcess("app", *map(str, app_files), "--index-dir", str(index_dir), "--windows").wait_ready()
    yield proc
    assert proc.stop() == 0


@pytest.fixture(scope="session")
def client(app_server: AppProcess):
    with httpx.Client(base_url=app_server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def key_server(app_server: AppProcess, index_dir: Path):
    """``serve --index`` over the app's index, with an API key."""
    proc = AppProcess("serve", "--index", str(index_dir), "--api-key", API_KEY).wait_ready()
    yield proc
    assert proc.stop() == 0


# -- the browser ---------------------------------------------------------------------------------
CHROMIUM_APT = "apt-get install chromium chromium-driver"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required")


def _missing(reason: str) -> None:
    """Skip, except on CI (CI=true), where a missing browser must fail the run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        _missing(f"Chromium and its driver are not installed ({CHROMIUM_APT})")
    return browser, driver


def start_browser(profile: Path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing('selenium is not installed (pip install "imagebind-sdk[test]")')
    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")  # a fresh profile: no stored key, no cache
    options.add_argument("--window-size=1280,900")
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture()
def page(request: pytest.FixtureRequest, browser, tmp_path: Path):
    """The browser; a failing test leaves a screenshot (its path is printed in the report)."""
    yield browser
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        shot = tmp_path / f"{request.node.name}.png"
        browser.save_screenshot(str(shot))
        sys.stderr.write(f"\nscreenshot of the failing page: {shot}\n")
        report.sections.append(("screenshot", str(shot)))
