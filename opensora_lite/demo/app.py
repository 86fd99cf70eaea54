"""The web page of ``opensora-lite serve``: Gradio over :mod:`jobs` (no sampling logic here).

One model per served config, loaded once. Requests queue one at a time (the page shows each its place);
a bad request is one line in the page's status, and the server goes on serving.
"""
import tempfile
from pathlib import Path

import gradio as gr

from ..errors import UserError
from .jobs import DemoRequest, Limits, run_job

STATUS_READY = "Pick a class (or write a prompt) and press Generate."


def class_choices(pipe) -> list:
    """The class dropdown's choices: ``"5 square-left"`` labels (ids alone for a config without names)."""
    return [pipe.label(i) for i in range(pipe.num_classes)]


def defaults(pipe) -> dict:
    """The config's own settings, shown in the page's fields."""
    scheduler = pipe.scheduler
    return dict(frames=pipe.num_frames, steps=getattr(scheduler, "num_sampling_steps", 25),
                sampler=scheduler.sampler, samplers=list(scheduler.SAMPLERS), cfg_scale=scheduler.cfg_scale)


def build_app(pipes: dict, limits: Limits, jobs_dir=None) -> gr.Blocks:
    """The page for ``pipes`` (config name -> VideoPipeline, already loaded)."""
    jobs_dir = Path(jobs_dir or tempfile.mkdtemp(prefix="opensora-lite-serve-"))
    names = list(pipes)
    first = pipes[names[0]]
    first_defaults = defaults(first)

    def generate(config, class_label, prompt, frames, steps, sampler, cfg_scale, seed, first_frame, clip,
                 progress=gr.Progress(track_tqdm=True)):  # noqa: B008 (Gradio's own idiom)
        if config not in pipes:
            return None, None, None, f"error: {config!r} is not served here; choose one of {', '.join(pipes)}"
        pipe = pipes[config]
        class_name = None if not pipe.num_classes or not class_label else str(class_label).split(" ", 1)[0]
        try:
            request = DemoRequest(config, class_name, frames, steps, sampler, cfg_scale, seed, first_frame, clip,
                                  prompt if pipe.takes_text else None)
            result = run_job(pipe, request, limits, jobs_dir)
        except UserError as err:  # one line in the page; the server goes on
            return None, None, None, f"error: {err}"
        if pipe.takes_text:
            label = prompt
        else:
            label = pipe.label(None if class_name is None else pipe.class_ids([class_name])[0])
        status = f"{label}: {result.videos.shape[2]} frames in {result.seconds:.1f} s"
        return str(result.video), str(result.grid), [str(result.video), str(result.grid)], status

    def on_config(config):
        pipe, d = pipes[config], defaults(pipes[config])
        choices = class_choices(pipe)
        return (gr.update(choices=choices, value=choices[0] if choices else None, visible=bool(choices)),
                gr.update(visible=pipe.takes_text), d["frames"], d["steps"],
                gr.update(choices=d["samplers"], value=d["sampler"]), d["cfg_scale"])

    with gr.Blocks(title="opensora_lite", analytics_enabled=False, delete_cache=(600, 3600)) as app:
        gr.Markdown("# opensora_lite\nGenerate a clip with a served model: pick a class (or write a prompt for a "
                    "text-to-video model), and give a first frame (image-to-video) or a clip to continue if you "
                    "like. One job runs at a time; others wait in the queue.")
        with gr.Row():
            with gr.Column():
                config = gr.Dropdown(names, value=names[0], label="model (config)", elem_id="config")
                choices = class_choices(first)
                class_label = gr.Dropdown(choices, value=choices[0] if choices else None, label="class",
                                          visible=bool(choices), elem_id="class")
                prompt = gr.Textbox(label="prompt (text-to-video models)", lines=2, visible=first.takes_text,
                                    elem_id="prompt")
                with gr.Row():
                    frames = gr.Number(first_defaults["frames"], label=f"frames (max {limits.max_frames})",
                                       precision=0, elem_id="frames")
                    steps = gr.Number(first_defaults["steps"], label=f"steps (max {limits.max_steps})", precision=0,
                                      elem_id="steps")
                    seed = gr.Number(0, label="seed", precision=0, elem_id="seed")
                with gr.Row():
                    sampler = gr.Dropdown(first_defaults["samplers"], value=first_defaults["sampler"],
                                          label="sampler", elem_id="sampler")
                    cfg_scale = gr.Number(first_defaults["cfg_scale"], label="guidance", elem_id="guidance")
                first_frame = gr.Image(type="filepath", format="png", label="first frame (image-to-video)",
                                       sources=["upload"], elem_id="first_frame")
                clip = gr.File(label=f"clip to continue (max {limits.max_upload_mb:.0f} MB, "
                                     f"{limits.max_clip_frames} frames)", elem_id="clip")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                status = gr.Markdown(STATUS_READY, elem_id="status")
                video = gr.Video(label="video (given frames have a white border)", autoplay=True, loop=True,
                                 elem_id="video")
                grid = gr.Image(label="grid", type="filepath", elem_id="grid")
                files = gr.File(label="download", file_count="multiple", elem_id="files")
        config.change(on_config, config, [class_label, prompt, frames, steps, sampler, cfg_scale])
        button.click(generate, [config, class_label, prompt, frames, steps, sampler, cfg_scale, seed, first_frame,
                                clip], [video, grid, files, status], api_name="generate")
    return app.queue(default_concurrency_limit=1, max_size=32)
