"""The command-line programs, one module each with ``main(argv)``: run them as ``opensora-lite COMMAND`` (see
``opensora_lite.cli``) or ``python tools/<script>.py``."""
