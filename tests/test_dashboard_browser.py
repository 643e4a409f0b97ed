"""The live dashboard in a real browser: Debian's headless chromium over a running coordinator and two nodes.

Real processes through the `mmer` CLI (coordinator with --http and a token file, two edge nodes with tiny
signed models on synthetic sessions at real-time pace); Selenium drives /usr/bin/chromium through
/usr/bin/chromedriver (never a downloaded browser or driver), logs in with a subscriber's token and reads the
page. The screenshot is kept in test-artifacts/ for people to look at.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from coordinator.auth import hash_token
from mmer_core.modalities import MODALITIES
from testkit.edge_models import make_bundle
from testkit.localhost import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
SUBJECTS = ("subject-1", "subject-2")
NUMBER = re.compile(r"^\d+(\.\d+)?$")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
    ),
]


def mmer(*args: str, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mmer_cli", *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def write_tokens(path: Path) -> dict[str, str]:
    """A device token per node, a viewer of both subjects and a viewer of the first only."""
    tokens = {f"wearable-{i + 1}": f"tok-wearable-{i + 1}" for i in range(len(SUBJECTS))}
    tokens |= {"viewer": "tok-viewer-both", "viewer-1": "tok-viewer-first"}
    lines = [f"{hash_token(tokens[d])} device {d}" for d in tokens if d.startswith("wearable-")]
    lines += [
        f"{hash_token(tokens['viewer'])} subscriber viewer {','.join(SUBJECTS)}",
        f"{hash_token(tokens['viewer-1'])} subscriber viewer-1 {SUBJECTS[0]}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return tokens


def log_in(driver, url: str, token: str) -> None:
    """Through the login form, as a person would."""
    driver.get(url)
    field = driver.find_element("id", "token")
    field.send_keys(token)
    driver.find_element("id", "login").click()


def page_served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1250",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def wait_until(driver, what: str, condition, timeout_s: float = 60.0):
    """Poll condition(driver) until it returns something truthy; fail naming what never appeared."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition(driver)
        except (StaleElementReferenceException, NoSuchElementException):
            value = None  # the page redraws its tables every second, or is still loading after a log-in
        if value:
            return value
        time.sleep(0.25)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "dashboard-failed.png"))
    pytest.fail(
        f"dashboard never showed {what} within {timeout_s:.0f} s (see test-artifacts/dashboard-failed.png)"
    )


def cells(driver, selector: str) -> list[list[str]]:
    """Text of each row's cells, read in one script call so a redraw cannot split a row."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map("
        "r => [...r.children].map(c => c.textContent.trim()))",
        selector,
    )


def test_dashboard_shows_live_subjects_latency_and_devices(tmp_path: Path) -> None:
    models, keys = tmp_path / "models", tmp_path / "keys"
    for m in MODALITIES:
        make_bundle(models / m, keys, m, 1)
    grpc_port, http_port = free_port(), free_port()
    tokens = write_tokens(tmp_path / "tokens")
    procs = [
        mmer(
            "coordinator",
            "--listen",
            f"127.0.0.1:{grpc_port}",
            "--http",
            f"127.0.0.1:{http_port}",
            "--auth",
            str(tmp_path / "tokens"),
            log=tmp_path / "coordinator.log",
        )
    ]
    for i, subject in enumerate(SUBJECTS):
        node = [
            "node",
            "--coordinator",
            f"127.0.0.1:{grpc_port}",
            "--device-id",
            f"wearable-{i + 1}",
            "--subject",
            subject,
            "--source",
            f"synthetic:{11 + i}",
            "--models",
            str(models),
            "--trainer-pubkey",
            str(keys / "trainer.pub"),
            "--spool",
            str(tmp_path / f"spool-{i}"),
            "--seconds",
            "90",
            f"--token={tokens[f'wearable-{i + 1}']}",
        ]
        procs.append(mmer(*node, log=tmp_path / f"node-{i}.log"))
    driver = None
    try:
        driver = browser()
        url = f"http://127.0.0.1:{http_port}/"
        deadline = time.monotonic() + 30
        while not page_served(url + "healthz"):
            dead = [p.args[3] for p in procs if p.poll() is not None]
            if time.monotonic() > deadline or dead:
                logs = "\n".join(p.read_text()[-1500:] for p in tmp_path.glob("*.log"))
                pytest.fail(f"dashboard not served at {url} (exited: {dead}):\n{logs}")
            time.sleep(0.3)
        log_in(driver, url, tokens["viewer"])
        wait_until(driver, "the live status", lambda d: d.find_element("id", "status").text == "live")
        session = next(c for c in driver.get_cookies() if c["name"] == "mmer_session")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert driver.execute_script("return document.cookie") == "", "no script may read the session"

        def subjects_with_labels(d):
            heads = cells(d, "#subjects .subject-head")
            labelled = {h[0]: h[1] for h in heads if h[1] not in ("", "…")}
            return labelled if set(SUBJECTS) <= set(labelled) else None

        labels = wait_until(driver, "a fused label for every subject", subjects_with_labels)
        assert set(labels.values()) <= {"happy", "angry", "sad", "calm"}, labels

        def modality_bars(d):
            mods = d.execute_script(
                "return [...document.querySelectorAll('#subjects .subject .modality')].map("
                "m => [m.firstChild.nodeValue, m.querySelectorAll('.bar span').length])"
            )
            return mods if len(mods) >= 2 * len(SUBJECTS) else None

        for text, segments in wait_until(driver, "per-modality scores", modality_bars):
            assert re.match(r"^(hr|eeg|speech|image) · w \d\.\d\d · v1$", text) and segments == 4, text
        assert (
            driver.execute_script("return document.querySelectorAll('#subjects .chart canvas').length") >= 2
        )

        def latency_rows(d):
            rows = {r[0]: r[1:] for r in cells(d, "#latency tbody tr")}
            return rows if {"inference", "network", "total"} <= set(rows) else None

        latency = wait_until(driver, "latency rows for the hops", latency_rows)
        for hop, values in latency.items():
            assert all(NUMBER.match(v) for v in values), (hop, values)
            count, p50, _, p99, top = (float(v) for v in values)
            assert count >= 1 and 0 <= p50 <= p99 <= top, (hop, values)

        hists = driver.execute_script(
            "return [...document.querySelectorAll('#latency-hists .hist')].map("
            "h => [h.dataset.hop, h.querySelectorAll('canvas').length])"
        )
        assert {hop for hop, canvases in hists if canvases} >= set(latency), hists

        def device_rows(d):
            rows = cells(d, "#devices tbody tr")
            complete = [r for r in rows if r[2] and all(NUMBER.match(v) for v in r[3:6])]
            return complete if len(complete) == len(SUBJECTS) else None

        for device, subject, versions, *_ in wait_until(
            driver, "device rows with spool and queue", device_rows
        ):
            assert device.startswith("wearable-") and subject in SUBJECTS
            assert versions.split(", ") == [f"{m} v1" for m in sorted(MODALITIES)], versions

        time.sleep(2)  # a few more live updates so the charts have lines to show
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        print(f"dashboard screenshot: {shot}")

        driver.find_element("id", "logout").click()
        wait_until(driver, "the login form after logging out", lambda d: d.find_elements("id", "token"))
        log_in(driver, url, tokens["viewer-1"])
        wait_until(driver, "the live status", lambda d: d.find_element("id", "status").text == "live")
        time.sleep(3)  # long enough for both subjects' emotions, if they were sent
        shown = {h[0] for h in cells(driver, "#subjects .subject-head")}
        devices = {r[1] for r in cells(driver, "#devices tbody tr")}
        assert shown == {SUBJECTS[0]} and devices == {SUBJECTS[0]}, (shown, devices)
    finally:
        if driver is not None:
            driver.quit()
        codes = [stop(p) for p in reversed(procs)]
    assert codes == [0] * len(procs), codes
