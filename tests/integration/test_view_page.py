"""``soccerkd view`` in a real browser: Debian's chromium, headless, driven by selenium through
chromium-driver, while a real ingest -> serve pipeline runs against the session's broker.

Without chromium or chromedriver the test skips on a workstation and fails under CI=true
(``make tools`` installs both). The screenshot is saved under the test's tmp_path; its path is printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from kafka_setup import fresh_kafka_config, serving

from stream.config import BatchingConfig, ModelConfig, StreamConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.dev.broker import free_port

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
CAMERAS = ("cam-left", "cam-right")


def browser():
    """A headless chromium under selenium; a missing browser fails under CI=true, skips elsewhere."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(p for p, path in (("chromium", chromium), ("chromium-driver", driver)) if path is None)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing} missing under CI: install Debian's chromium and chromium-driver (make tools)",
                        pytrace=False)
        pytest.skip(f"{missing} not installed (Debian packages chromium, chromium-driver)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,1150", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    # explicit paths: selenium's driver manager is never asked (it would download)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


def write_video(path: Path, n: int, *, colour: tuple[int, int, int]) -> Path:
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    for i in range(n):
        img = np.full((120, 160, 3), (40, 110, 40), np.uint8)   # a pitch
        x = (i * 3) % 140
        img[50:70, x:x + 20] = colour                            # a player crossing it
        out.write(img)
    out.release()
    return path


def ingest_loop(cfg: StreamConfig, video: Path, camera: str, stop: threading.Event) -> threading.Thread:
    from stream.app.ingest import IngestOptions, ingest

    options = IngestOptions(source=str(video), camera_id=camera, bootstrap=cfg.kafka.bootstrap,
                            topic=cfg.kafka.frames_topic, frames_per_batch=5, pacing="realtime", loop=True,
                            max_side=160)
    thread = threading.Thread(target=ingest, args=(options,), kwargs=dict(progress=False, stop=stop),
                              name=f"ingest-{camera}", daemon=True)
    thread.start()
    return thread


def page_js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def image_digest(driver, camera: str) -> tuple[str, str, int]:
    """(version, a digest of the picture's bytes as the browser fetches them, its natural width)."""
    return driver.execute_async_script("""
        const [camera, done] = arguments;
        const img = document.querySelector(`section.camera[data-camera="${camera}"] img`);
        if (!img || !img.complete || !img.naturalWidth || !img.src) { done(null); return; }
        fetch(img.src).then(r => r.arrayBuffer()).then(buf => crypto.subtle.digest("SHA-256", buf))
          .then(d => done([img.dataset.version, Array.from(new Uint8Array(d)).map(b => b.toString(16)).join(""),
                           img.naturalWidth]))
          .catch(() => done(null));""", camera)


def wait_for(what: str, fn, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"the page did not show {what} within {timeout_s:g} s"
        time.sleep(0.25)


def test_live_page_shows_frames_events_figures_and_model_in_chromium(kafka_broker, checkpoint, tmp_path):
    from stream.app.compose import build_service
    from stream.kafka.events import read_events

    driver = browser()   # first: a missing browser fails or skips before anything starts
    metrics_port, view_port = free_port(), free_port()
    cfg = StreamConfig(
        kafka=fresh_kafka_config(kafka_broker, "view", frames_partitions=2),
        model=ModelConfig(checkpoint=checkpoint, device="cpu", amp="none", cpu_threads=1),
        windows=WindowConfig(window_stride=4, reorder_tolerance=0, max_fill=0),
        smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=4),
        batching=BatchingConfig(max_batch=4, max_wait_ms=20, max_pending_windows=16, resume_pending_windows=4),
        metrics_port=metrics_port, metrics_bind="127.0.0.1", log_every_s=5.0)
    view_log = open(tmp_path / "view.log", "w")
    view = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "view", "--bootstrap", cfg.kafka.bootstrap,
         "--frames-topic", cfg.kafka.frames_topic, "--events-topic", cfg.kafka.events_topic, "--port", str(view_port),
         "--metrics-url", f"http://127.0.0.1:{metrics_port}/metrics", "--max-seconds", "150"],
        cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=view_log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    ingesters = [ingest_loop(cfg, write_video(tmp_path / f"{cam}.avi", 100, colour=colour), cam, stop)
                 for cam, colour in zip(CAMERAS, ((230, 230, 230), (40, 40, 220)))]
    base = f"http://127.0.0.1:{view_port}"
    started = time.monotonic()
    service = build_service(cfg)
    try:
        with serving(service, until=lambda: True):
            wait_for("the view's port", lambda: _answers(base + "/healthz") or view.poll() is not None)
            assert view.poll() is None, (tmp_path / "view.log").read_text()
            driver.get(base + "/")
            assert driver.title == "soccerkd view"

            # 1. each camera's picture arrives, and is replaced by a newer one with other bytes
            for cam in CAMERAS:
                first = wait_for(f"a picture of {cam}", lambda: image_digest(driver, cam))
                assert first[2] >= 480, first   # scaled up for the text drawn on it
                later = wait_for(f"a newer picture of {cam}", lambda: (d := image_digest(driver, cam))
                                 and d[0] != first[0] and d)
                assert int(later[0]) > int(first[0]) and later[1] != first[1], (first, later)

            # 2. an event row with the label the tiny model favours, and that label on the picture's card
            row = wait_for("a 'kick' event row", lambda: page_js(driver, """
                const r = document.querySelector('section.camera tr.event[data-label="kick"]');
                return r && r.innerText;"""), timeout_s=40)
            assert "kick" in row and "0.8" in row, row   # p = 0.87: "kick 0.87 ..."

            # 3. the figures of the last minute, each with its source
            def figures():
                text = {k: page_js(driver, f"return document.getElementById('{k}').textContent")
                        for k in ("frames-per-s", "windows-per-s", "latency", "model", "windows-source",
                                  "latency-source", "frames-source")}
                # windows/s needs two scrapes of serve after its first windows
                return text if text["windows-per-s"] not in ("–", "0.0") and text["model"] != "–" \
                    and not text["latency"].startswith("–") else None
            shown = wait_for("frames/s, windows/s, latency and the model", figures, timeout_s=30)
            assert 10 < float(shown["frames-per-s"]) < 120, shown   # two cameras at 25 frames/s, from the start
            assert float(shown["windows-per-s"]) > 0, shown
            assert "soccerkd_windows_total" in shown["windows-source"] and str(metrics_port) in shown["windows-source"]
            assert "read_committed" in shown["latency-source"] and cfg.kafka.frames_topic in shown["frames-source"]
            p50, p99 = (float(x.strip().rstrip("s")) for x in shown["latency"].split("/"))
            assert 0 <= p50 <= p99 < 30, shown
            event = read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=10, idle_s=None,
                                until=lambda evs: len(evs) >= 1)[0]
            assert shown["model"] == f"{event.model_name} @ {event.checkpoint_sha256[:12]}", shown

            # 4. nothing came from elsewhere: every resource the page loaded is the view's own
            urls = page_js(driver, "return performance.getEntriesByType('resource').map(e => e.name)")
            assert urls and all(u.startswith(base + "/") for u in urls), urls

            # 5. the viewer's own cost: at most --max-fps (4) pictures decoded per camera and second
            elapsed = time.monotonic() - started
            with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
                own = resp.read().decode()
            renders = float(re.search(r"^soccerkd_view_frames_rendered_total (\S+)$", own, re.M).group(1))
            batches = float(re.search(r'^soccerkd_view_records_total\{kind="frames"\} (\S+)$', own, re.M).group(1))
            assert 0 < renders <= 4 * elapsed * len(CAMERAS) + len(CAMERAS), (renders, elapsed)
            ticks = os.sysconf("SC_CLK_TCK")
            stat = Path(f"/proc/{view.pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu_s = (int(stat[11]) + int(stat[12])) / ticks
            print(f"\n[view] {elapsed:.1f} s: {batches:.0f} frame batches read, {renders:.0f} pictures rendered, "
                  f"view process CPU {cpu_s:.2f} s (startup included)")

            shot = tmp_path / "view.png"
            driver.save_screenshot(str(shot))
            print(f"\n[view] screenshot of the live page: {shot}")
            assert shot.stat().st_size > 10_000
    finally:
        stop.set()
        driver.quit()
        view.terminate()
        try:
            assert view.wait(15) == 0, (tmp_path / "view.log").read_text()   # SIGTERM: a clean stop
        finally:
            view_log.close()
            for t in ingesters:
                t.join(10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False
