"""The web demo (``opensora-lite serve``): limits, the same sample as the CLI, the queue, and the page in a real
browser (Debian's chromium driven by selenium, with no network of its own)."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from opensora_lite.data.video_write import write_video
from opensora_lite.demo.jobs import DemoRequest, Limits, check_request, run_job
from opensora_lite.errors import UserError

from helpers import ROOT, SHAPES, run

TOOL = "serve"  # the command the tool fixture runs
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's packages (make install-dist)
SERVED = "configs/shapes/stdit_shapes.py"  # what `opensora-lite serve` serves without arguments
SCREENSHOT_ENV = "OPENSORA_LITE_DEMO_SCREENSHOT"  # also save the finished page there (docs/demo.png)


@pytest.fixture(scope="module")
def pipe():
    from opensora_lite import VideoPipeline

    return VideoPipeline.from_config(SHAPES)


def request(**changes) -> DemoRequest:
    settings = dict(config=SHAPES, class_name="square-left", frames=16, steps=4, sampler="euler", cfg_scale=3.0,
                    seed=0)
    return DemoRequest(**{**settings, **changes})


#################################################################################
#                        Without a browser: jobs and limits                     #
#################################################################################


def test_without_gradio_serve_prints_the_install_line_and_exits_2(tool, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    code, out, err = run(tool, capsys)
    assert code == 2 and len(err) == 1 and 'pip install "opensora_lite[demo]"' in err[0], err


@pytest.mark.parametrize("changes, message", [
    (dict(frames=500), "500 frames is more than this server makes (96 at most)"),
    (dict(steps=1000), "1000 steps is more than this server runs (100 at most)"),
    (dict(frames=0), "request.frames must be a positive integer"),
    (dict(cfg_scale=float("nan")), "request.cfg_scale must be a finite number"),
    (dict(prompt="a" * 2001), "the prompt has 2001 characters, over this server's 2000"),
])
def test_a_request_for_too_much_is_refused_with_the_limit(changes, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_request(request(**changes), Limits())


def test_uploads_are_checked_with_the_projects_readers_and_limits(tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * 2**20))
    with pytest.raises(UserError, match="the clip to continue is 2 MB, over this server's 1 MB"):
        check_request(request(extend=str(big)), Limits(max_upload_mb=1))
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video")
    with pytest.raises(UserError, match="notes.mp4"):  # the reader's own DataError, one line
        check_request(request(extend=str(not_a_video)), Limits())
    with pytest.raises(UserError, match="not one of .png"):
        check_request(request(first_frame=str(not_a_video)), Limits())
    long_clip = write_video(tmp_path / "long.mp4", np.zeros((20, 16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="has 20 frames, over this server's 8"):
        check_request(request(extend=str(long_clip)), Limits(max_clip_frames=8))


def test_a_job_gives_the_clis_sample_and_deletes_its_uploads(pipe, tmp_path, capsys):
    """The demo adds no sampling of its own: the same settings give the same tensors and the same MP4 bytes as
    ``opensora-lite generate``. The uploaded clip is gone when the job ends, also when the job fails."""
    from helpers import load_tool

    clip = pipe(classes=[5], num_frames=16, steps=2, progress=False).videos[0]  # (3, 16, H, W)
    upload = tmp_path / "upload" / "clip.mp4"
    write_video(upload, clip)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    result = run_job(pipe, request(extend=str(upload), frames=24), Limits(), jobs)
    assert not upload.exists() and not upload.parent.exists()
    again = write_video(tmp_path / "again.mp4", clip)
    code, _, err = run(load_tool("generate"), capsys, SHAPES, "--class", "square-left", "--frames", 24, "--steps", 4,
                       "--sampler", "euler", "--cfg-scale", 3.0, "--seed", 0, "--extend", again,
                       "--save-dir", tmp_path / "cli", "--no-progress")
    assert code == 0, err
    assert result.video.read_bytes() == (tmp_path / "cli" / "5-0.mp4").read_bytes()
    direct = pipe(classes=["square-left"], num_frames=24, steps=4, sampler="euler", cfg_scale=3.0, seed=0,
                  extend=again, progress=False).videos
    assert np.array_equal(result.videos.numpy(), direct.numpy())
    failing = tmp_path / "up2" / "x.png"
    failing.parent.mkdir()
    failing.write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read the image"):
        run_job(pipe, request(first_frame=str(failing)), Limits(), jobs)
    assert not failing.exists()


#################################################################################
#                               A running server                                #
#################################################################################


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``tools/serve.py`` in its own process, as a user starts it, on a free loopback port."""
    port, log = free_port(), tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, GRADIO_TEMP_DIR=str(log.parent / "gradio"), OMP_NUM_THREADS="2")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "serve.py"), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"the server did not start: {log.read_text()[-2000:]}")
    yield dict(url=url, log=log, proc=proc)
    proc.terminate()
    proc.wait(timeout=30)


def test_the_queue_runs_one_job_at_a_time_and_the_second_waits(server):
    """Two requests at once: the second is told its place in the queue, then completes after the first."""
    from gradio_client import Client
    from gradio_client.utils import Status

    client = Client(server["url"], verbose=False)
    long_job = [SERVED, "5 square-left", "", 48, 30, "euler", 3.0, 0, None, None]  # a few seconds of sampling
    first = client.submit(*long_job, api_name="/generate")
    deadline = time.time() + 60
    while first.status().code not in (Status.PROCESSING, Status.PROGRESS) and time.time() < deadline:
        time.sleep(0.02)
    second = client.submit(SERVED, "0 circle-right", "", 16, 4, "euler", 3.0, 1, None, None, api_name="/generate")
    waiting = []
    while not second.done():
        status = second.status()
        if status.code == Status.IN_QUEUE and not first.done():
            waiting.append(status.rank)  # its place in the queue, as the page shows it
        time.sleep(0.02)
    assert waiting, "the second request never waited"
    out_first, out_second = first.result(), second.result()
    assert out_first[3].startswith("5 square-left: 48 frames") and out_second[3].startswith("0 circle-right: 16")
    assert Path(out_first[0]["video"] if isinstance(out_first[0], dict) else out_first[0]).stat().st_size > 0


def test_the_page_in_a_real_browser(server, tmp_path):
    """Pick square-left, make 16 frames, watch the video (2 s at 8 fps) and the grid; a non-video as a clip is one
    line in the page, and the next request still works."""
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), \
        "the browser test needs Debian's chromium and chromium-driver: make install-dist installs them"
    os.environ["SE_AVOID_STATS"] = "true"  # selenium makes no network calls of its own
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1300"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    wait = WebDriverWait(driver, 180)
    try:
        driver.get(server["url"])
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#class input"))
        box = driver.find_element(By.CSS_SELECTOR, "#class input")
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("square-left")
        wait.until(lambda d: [li for li in d.find_elements(By.CSS_SELECTOR, "ul[role=listbox] li")
                              if li.text.strip() == "5 square-left"])[0].click()
        frames = driver.find_element(By.CSS_SELECTOR, "#frames input")
        frames.clear()
        frames.send_keys("16", Keys.TAB)  # a number field takes its value when it loses focus
        driver.find_element(By.ID, "generate").click()
        wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("5 square-left"))
        duration = wait.until(lambda d: d.execute_script(
            "const v = document.querySelector('#video video'); return v && v.readyState >= 1 ? v.duration : null"))
        assert abs(duration - 2.0) < 0.2, duration  # 16 frames at the config's 8 fps
        assert wait.until(lambda d: d.execute_script(
            "const i = document.querySelector('#grid img'); return i && i.complete ? i.naturalWidth : 0")) > 64
        shot = tmp_path / "demo.png"
        driver.save_screenshot(str(shot))
        if os.environ.get(SCREENSHOT_ENV):
            shutil.copy(shot, os.environ[SCREENSHOT_ENV])

        not_a_video = tmp_path / "notes.txt"
        not_a_video.write_text("not a video")
        driver.find_element(By.CSS_SELECTOR, "#clip input[type=file]").send_keys(str(not_a_video))
        wait.until(lambda d: "notes" in d.find_element(By.ID, "clip").text)
        driver.find_element(By.ID, "generate").click()
        error = wait.until(lambda d: d.find_element(By.ID, "status").text.strip()
                           if d.find_element(By.ID, "status").text.startswith("error:") else None)
        assert len(error.splitlines()) == 1 and "notes.txt" in error, error
        assert "Traceback" not in driver.page_source

        driver.find_element(By.CSS_SELECTOR, "#clip button[aria-label='Clear']").click()
        seed = driver.find_element(By.CSS_SELECTOR, "#seed input")
        seed.clear()
        seed.send_keys("3", Keys.TAB)
        driver.find_element(By.ID, "generate").click()
        wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("5 square-left"))
    finally:
        driver.quit()
    assert server["proc"].poll() is None  # still serving


def test_a_text_model_takes_the_prompt(tmp_path):
    """A text-to-video config (a small STDiT3 with a tiny T5, random weights): the prompt reaches the pipeline
    and names the output; an empty one is one line."""
    from opensora_lite import VideoPipeline
    from opensora_lite.config import load_config

    t2v = str(ROOT / "configs/opensora/t2v_v1_2.py")
    cfg = load_config(t2v, {"model.depth": 1, "model.hidden_size": 64, "model.num_heads": 4,
                            "model.caption_channels": 32, "vae.vae_2d.config.block_out_channels": (8, 8, 8, 8),
                            "vae.vae_2d.config.norm_num_groups": 4, "vae.vae_2d.config.layers_per_block": 1,
                            "vae.vae_temporal.filters": 8, "vae.vae_temporal.num_groups": 4,
                            "vae.vae_temporal.num_res_blocks": 1, "resolution": "144p", "aspect_ratio": "1:1"})
    text_pipe = VideoPipeline.from_loaded_config(cfg, t2v, random_init=True)
    job = request(config=t2v, class_name=None, frames=1, steps=1, prompt="a red panda")
    result = run_job(text_pipe, job, Limits(), tmp_path)
    assert result.video.name == "a-red-panda-0.mp4" and result.videos.shape == (1, 3, 1, 192, 192)
    with pytest.raises(UserError, match="every prompt must be a non-empty string"):
        run_job(text_pipe, request(config=t2v, class_name=None, frames=1, steps=1, prompt=""), Limits(), tmp_path)
