"""A local web page to try the served models: pick a class, frames, sampler and seed, give a first frame or a clip,
and watch the video.

    opensora-lite serve                                        # the shipped shapes model, http://127.0.0.1:7860
    opensora-lite serve configs/shapes/stdit_shapes.py runs/my_run --port 8000

Gradio is the ``[demo]`` extra (``pip install "opensora_lite[demo]"``). The page is served on the loopback
address unless --host says otherwise; there is no --share, which needs the internet (a tunnel through Gradio's
servers). Each model is loaded once; one job runs at a time and the others queue.
"""
import importlib.util
import logging
import os

from opensora_lite.cli import ArgumentParser, check_device
from opensora_lite.errors import UserError

DEFAULT_CONFIG = "configs/shapes/stdit_shapes.py"
INSTALL_LINE = 'pip install "opensora_lite[demo]"'

logger = logging.getLogger(__name__)


def parse_args(argv):
    from opensora_lite.demo.jobs import Limits

    limits = Limits()
    parser = ArgumentParser(prog="opensora-lite serve", description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="*", default=[DEFAULT_CONFIG],
                        help=f"configs or training run folders to serve (default: {DEFAULT_CONFIG})")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--max-frames", type=int, default=limits.max_frames, help="frames of one clip, at most")
    parser.add_argument("--max-steps", type=int, default=limits.max_steps, help="sampler steps, at most")
    parser.add_argument("--max-upload-mb", type=float, default=limits.max_upload_mb, help="size of an upload, at most")
    return parser.parse_args(argv)


def main(argv):
    if importlib.util.find_spec("gradio") is None:
        raise UserError(f"the web demo needs Gradio, the [demo] extra: {INSTALL_LINE}")
    args = parse_args(argv)
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be in 1..65535, got {args.port}")
    check_device(args.device)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: nothing outside is reached
    from opensora_lite.demo.app import build_app
    from opensora_lite.demo.jobs import Limits
    from opensora_lite.inference.pipeline import VideoPipeline

    limits = Limits(max_frames=args.max_frames, max_steps=args.max_steps, max_upload_mb=args.max_upload_mb)
    pipes = {str(config): VideoPipeline.from_config(config, device=args.device) for config in args.configs}
    app = build_app(pipes, limits)
    logger.info("serving %s on http://%s:%d (Ctrl-C stops)", ", ".join(pipes), args.host, args.port)
    app.launch(server_name=args.host, server_port=args.port, max_file_size=int(limits.max_upload_mb * 2**20),
               ssr_mode=False, show_error=False, quiet=True)
