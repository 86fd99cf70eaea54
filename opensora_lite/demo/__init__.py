"""The local web demo (``opensora-lite serve``): jobs without Gradio in ``jobs.py``, the page in ``app.py``."""
