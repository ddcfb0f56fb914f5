"""convolve --html in a real browser (Debian's Chromium through Playwright): the page's sums are F.conv2d's."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from filterlab.cli import app
from filterlab.core.geometry import out_size
from filterlab.explain.kernels import KERNELS, load_input


def need_chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


def conv(x: np.ndarray, k: np.ndarray, s: int, p: int, d: int) -> np.ndarray:
    return F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(np.ascontiguousarray(k))[None, None],
                    stride=s, padding=p, dilation=d)[0, 0].numpy()


def shown_sum(page) -> tuple[int, int, float]:
    text = page.text_content("#sum")
    m = re.fullmatch(r"output \((\d+), (\d+)\) = sum of the 9 products = (\S+)", text)
    assert m, text
    return int(m.group(1)), int(m.group(2)), float(m.group(3))


def check_cells(page, ref: np.ndarray, cells: list[tuple[int, int]], click: bool) -> None:
    assert page.locator("#output tr").count() == ref.shape[0]
    assert page.locator("#output tr").first.locator("td").count() == ref.shape[1]
    for i, j in cells:
        (page.click if click else page.hover)(f"#out-{i}-{j}")
        si, sj, total = shown_sum(page)
        assert (si, sj) == (i, j) and total == pytest.approx(ref[i, j], rel=1e-6, abs=1e-6)
        assert page.locator("#input td.win").count() == 9 and page.locator("#products tr").count() == 9


def open_page(p, html_path):
    browser = p.chromium.launch(executable_path=need_chromium(),
                                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: problems.append(r.url) if r.url != html_path.resolve().as_uri() else None)
    page.goto(html_path.resolve().as_uri())
    return browser, page, problems


def test_page_sums_equal_conv2d_in_chromium(runner, tmp_path):
    need_chromium()
    from playwright.sync_api import sync_playwright

    r = runner.invoke(app, ["convolve", "--kernel", "sobel_x", "--image", "seven", "--html", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "convolve.html").read_text()
    assert "http" not in html.split("<body>")[0] and "<link" not in html and 'src="' not in html
    x, _ = load_input("seven")
    k = KERNELS["sobel_x"][0]
    with sync_playwright() as p:
        browser, page, problems = open_page(p, tmp_path / "convolve.html")
        check_cells(page, conv(x, k, 1, 0, 1), [(0, 0), (5, 17), (12, 9), (25, 25)], click=False)
        for s, pad, d in ((2, 1, 1), (3, 2, 1), (1, 3, 2)):
            page.select_option("#stride", str(s))
            page.select_option("#padding", str(pad))
            page.select_option("#dilation", str(d))
            ref = conv(x, k, s, pad, d)
            assert ref.shape == (out_size(28, 3, s, pad, d),) * 2
            last = ref.shape[0] - 1
            check_cells(page, ref, [(0, 0), (last // 2, last // 3), (last, last)], click=True)
            assert f"= {ref.shape[0]}" in page.text_content("#arith")
        browser.close()
    assert problems == []


def test_page_flips_the_kernel_for_convolution(runner, tmp_path):
    need_chromium()
    from playwright.sync_api import sync_playwright

    r = runner.invoke(app, ["convolve", "--kernel", "emboss", "--image", "edge6x6", "--flip", "--padding", "1",
                            "--html", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    x, _ = load_input("edge6x6")
    flipped = KERNELS["emboss"][0][::-1, ::-1]
    with sync_playwright() as p:
        browser, page, problems = open_page(p, tmp_path / "convolve.html")
        check_cells(page, conv(x, flipped, 1, 1, 1), [(0, 0), (2, 2), (3, 5)], click=True)
        assert page.locator("#input td.pad").count() == 8 * 8 - 36  # the padding ring, drawn as padding
        browser.close()
    assert problems == []
