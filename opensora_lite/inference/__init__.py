"""Inference: the pipeline (a config in, videos out), its window planner and its output."""
