"""README screenshot: TensorBoard's images dashboard while fashion_quick trains (mid-training, step >= 300).

    python .readme/tensorboard_shot.py OUT_FOLDER FASHION_MNIST_FOLDER .readme/tensorboard_filters.png
"""
import json, os, subprocess, sys, time
from pathlib import Path
from playwright.sync_api import expect, sync_playwright
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

out = Path(sys.argv[1]); data = sys.argv[2]; dest = sys.argv[3]
train = subprocess.Popen([sys.executable, "-m", "filterlab", "train", "configs/fashion_quick.yaml", "--tensorboard", "-q",
                          "--out", str(out), "--set", f"data.root={data}", "--set", "data.download=false", "--set", "output.figures=false"],
                         stdout=subprocess.PIPE, text=True)
def run_dir():
    found = list(out.glob("fashion_quick/*/tensorboard"))
    return found[0].parent if found else None
def latest():
    r = run_dir()
    if r is None: return -1
    ea = EventAccumulator(str(r / "tensorboard"), size_guidance={"images": 0}); ea.Reload()
    try: return ea.Images("filters/conv1")[-1].step
    except KeyError: return -1
while latest() < 300:
    assert train.poll() is None, "training ended before a mid-training snapshot"
    time.sleep(0.5)
tb = subprocess.Popen([sys.executable, "-m", "filterlab", "tensorboard", str(run_dir())], stdout=subprocess.PIPE, text=True)
url = tb.stdout.readline().split()[4]
try:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = b.new_page(viewport={"width": 1100, "height": 760})
        page.goto(url + "#images"); page.reload()
        page.get_by_label("Filter tags (regular expressions supported)").fill("^filters/conv1$")
        expect(page.locator("img[src*='individualImage']").first).to_be_visible(timeout=60000)
        page.wait_for_timeout(1500)
        status = json.loads((run_dir() / "meta.json").read_text())["status"]
        step_text = page.get_by_text("step", exact=False).all_inner_texts()[:4]
        page.screenshot(path=dest)
        print("status at screenshot:", status, "latest event step:", latest(), step_text)
        b.close()
finally:
    tb.terminate(); tb.wait()
    train.wait()
