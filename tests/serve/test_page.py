"""The web page in a real browser: headless Chromium from Debian's packages, driven by Playwright's Python API
(pointed at /usr/bin/chromium; nothing downloads a browser), against a server the test starts.

It types the API key, uploads a real photo with two person boxes, waits for the drawing, checks the people
count shown, that both people's colours are on the canvas and that a joint's score shows on hover; then
starts the camera (Chromium's fake camera) and waits for tracked frames over the WebSocket. Screenshots
are kept in ``$HOURGLASS_TEST_ARTIFACTS`` (default ``runs/test-artifacts/``). Under ``CI`` a missing browser
or Playwright fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from servers import API_KEY, BOXES, Server
from sessions import REPO_ROOT

CHROMIUM = os.environ.get("HOURGLASS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("HOURGLASS_TEST_ARTIFACTS") or REPO_ROOT / "runs" / "test-artifacts")


def _browser_or_skip():
    problem = None
    if shutil.which(CHROMIUM) is None:
        problem = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed (pip install playwright; it comes with the [dev] extra)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem + " (CI must have it: .ci/run installs it)")
        pytest.skip(problem)
    return sync_playwright


COUNT_COLOURS = """([palette, n]) => {
  const c = document.getElementById('canvas');
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const counts = palette.slice(0, n).map(() => 0);
  let sum = 0, sum2 = 0;
  for (let i = 0; i < px.length; i += 4) {
    palette.slice(0, n).forEach((p, j) => {
      if (px[i] === p[0] && px[i + 1] === p[1] && px[i + 2] === p[2]) counts[j] += 1;
    });
    sum += px[i]; sum2 += px[i] * px[i];
  }
  const m = sum / (px.length / 4);
  return { counts, std: Math.sqrt(sum2 / (px.length / 4) - m * m), width: c.width, height: c.height };
}"""


def test_page_draws_people_on_a_photo_and_on_camera_frames(keyed_server: Server, photo: Path) -> None:
    sync_playwright = _browser_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"http://127.0.0.1:{keyed_server.port}/")
            page.fill("#key", API_KEY)
            page.dispatch_event("#key", "change")
            page.wait_for_function("document.getElementById('model').textContent.includes('hg1')", timeout=20_000)
            page.fill("#boxes", json.dumps(BOXES))
            page.set_input_files("#file", str(photo))
            page.wait_for_selector("body[data-state='drawn']", timeout=60_000)
            assert page.text_content("#people") == "2"
            seen = page.evaluate(COUNT_COLOURS, [page.evaluate("window.hourglassPage.palette"), 2])
            assert (seen["width"], seen["height"]) == (1280, 720)
            assert seen["std"] > 10  # a photo, not a blank canvas
            assert min(seen["counts"]) > 100, seen["counts"]  # both people's skeletons, each in its colour
            assert "network" in page.text_content("#timing") and "round trip" in page.text_content("#timing")

            last = page.evaluate("window.hourglassPage.last")
            x, y, _ = next(k for k in last["people"][0]["keypoints"] if 20 < k[0] < 1260 and 20 < k[1] < 700)
            box = page.locator("#canvas").bounding_box()
            page.mouse.move(box["x"] + x * box["width"] / 1280, box["y"] + y * box["height"] / 720)
            page.wait_for_selector("#tip:not([hidden])", timeout=5_000)
            tip = re.fullmatch(r"person (\d) · (\w+): (-?\d+\.\d\d)", page.text_content("#tip"))
            assert tip is not None, page.text_content("#tip")  # the joint nearest the pointer, with its score
            joint = last["skeleton"]["joints"].index(tip.group(2))
            assert f"{last['people'][int(tip.group(1)) - 1]['keypoints'][joint][2]:.2f}" == tip.group(3)
            page.screenshot(path=str(ARTIFACTS / "serve-page-photo.png"))

            page.click("#camera")
            page.wait_for_function(
                "document.getElementById('frames').textContent.match(/frame ([3-9]|\\d\\d)/)", timeout=60_000
            )
            assert "tracks 1, 2" in page.text_content("#frames")  # the same two people, frame after frame
            assert page.get_attribute("body", "data-state") == "streaming"
            page.screenshot(path=str(ARTIFACTS / "serve-page-camera.png"))
            page.click("#camera")
            assert errors == []
        finally:
            browser.close()
