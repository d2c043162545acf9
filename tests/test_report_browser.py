"""``lrpcore report`` in a real browser: headless Chromium loads the page, draws the heatmap, steps layers.

The page records where its parts are (``data-layout`` on ``<html>``) once its script has run;
``--dump-dom`` gives that, ``--screenshot`` the picture at the same window size, so a test can
cut the heatmap out of the screenshot and compare it with the map embedded in the file.
CI installs Chromium (``.ci/run``) and sets ``LRPCORE_REQUIRE_BROWSER=1``; there a missing
browser fails the test instead of skipping it.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from lrpcore.cli import main

WINDOW = (1200, 2600)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or \
        (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None
    if found is None:
        if os.environ.get("LRPCORE_REQUIRE_BROWSER"):
            pytest.fail("LRPCORE_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("headless Chromium is not installed here (CI installs it with apt-get install -y chromium; "
                    "this machine could not)")
    return found


def _run(browser: str, profile, arguments: list[str], url: str) -> subprocess.CompletedProcess:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--no-first-run", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1",
               "--virtual-time-budget=3000", *arguments, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def _console(stderr: str) -> list[str]:
    """The page's console messages and uncaught errors from Chromium's log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    path = folder / "report.html"
    assert main(["report", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def browser():
    return _chromium()


def _layout(browser, tmp_path, url):
    result = _run(browser, tmp_path / "profile", ["--dump-dom"], url)
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'data-layout="([^"]*)"', result.stdout)
    assert match, "the page's script did not run (no data-layout on <html>)"
    return json.loads(match.group(1).replace("&quot;", '"')), result


def _screenshot(browser, tmp_path, url, name):
    from PIL import Image

    path = tmp_path / name
    result = _run(browser, tmp_path / "profile", [f"--screenshot={path}"], url)
    assert result.returncode == 0 and path.is_file(), result.stderr[-2000:]
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16), result


def _crop(picture, box):
    left, top, width, height = (int(round(value)) for value in box)
    return picture[top + 1:top + height - 1, left + 1:left + width - 1]   # inside the 1-pixel border


def _embedded_png(page: str, element_id: str) -> np.ndarray:
    from PIL import Image

    match = re.search(rf'id="{element_id}"[^>]*src="data:image/png;base64,([^"]+)"', page)
    assert match, f"no embedded PNG with id {element_id}"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(match.group(1)))).convert("RGB")).astype(np.int16)


def test_report_loads_without_console_errors_and_is_self_contained(report, browser, tmp_path):
    layout, result = _layout(browser, tmp_path, report.as_uri())
    messages = _console(result.stderr)
    assert any("lrpcore report ready: 16 steps" in line for line in messages), result.stderr[-2000:]
    assert [line for line in messages if "lrpcore report ready" not in line] == []   # no error, no warning
    assert layout["current"] == "15"                                # the top layer is shown first
    page = report.read_text(encoding="utf-8")
    # nothing to fetch: no external scripts, styles, images or fonts
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script src" not in page and "@import" not in page


def test_screenshot_shows_the_embedded_non_blank_heatmap(report, browser, tmp_path):
    layout, _ = _layout(browser, tmp_path, report.as_uri())
    picture, _ = _screenshot(browser, tmp_path, report.as_uri(), "top.png")
    shown = _crop(picture, layout["input-heatmap"])
    assert shown.shape[0] > 100 and shown.shape[1] > 100
    # not blank: many pixels are clearly coloured (red or blue), not white or grey
    saturation = shown.max(axis=2) - shown.min(axis=2)
    assert (saturation > 60).mean() > 0.03, f"only {(saturation > 60).mean():.1%} coloured pixels"
    # and it is the heatmap in the file: sample the screenshot at the centres of the 64 x 64 map's cells
    embedded = _embedded_png(report.read_text(encoding="utf-8"), "input-heatmap")
    rows = ((np.arange(embedded.shape[0]) + 0.5) * shown.shape[0] / embedded.shape[0]).astype(int)
    columns = ((np.arange(embedded.shape[1]) + 0.5) * shown.shape[1] / embedded.shape[1]).astype(int)
    sampled = shown[np.ix_(rows, columns)]
    assert np.abs(sampled - embedded).mean() < 6.0


def test_stepping_to_another_layer_changes_what_is_shown(report, browser, tmp_path):
    top_layout, _ = _layout(browser, tmp_path, report.as_uri() + "#pos=0")
    conv_layout, _ = _layout(browser, tmp_path, report.as_uri() + "#layer=3")
    assert top_layout["current"] == "15" and conv_layout["current"] == "3"
    top, _ = _screenshot(browser, tmp_path, report.as_uri() + "#pos=0", "step_top.png")
    conv, _ = _screenshot(browser, tmp_path, report.as_uri() + "#layer=3", "step_conv.png")
    top_map = _crop(top, top_layout["current-map"])
    conv_map = _crop(conv, conv_layout["current-map"])
    assert top_map.shape != conv_map.shape or np.abs(top_map - conv_map).mean() > 5.0
    # the convolution's arriving map (16 channels, 32 x 32) shows relevance too: not blank
    saturation = conv_map.max(axis=2) - conv_map.min(axis=2)
    assert (saturation > 60).mean() > 0.01
    # the shared colour scale is another picture of the same layer
    shared, _ = _screenshot(browser, tmp_path, report.as_uri() + "#layer=3&scale=shared", "step_shared.png")
    assert np.abs(_crop(shared, conv_layout["current-map"]) - conv_map).mean() > 1.0
