"""onnxruntime sessions as every ONNX family opens them: providers from the device string,
a thread count from the model's config, quiet logs."""

from __future__ import annotations

from pathlib import Path

from speechmodels.config import ModelConfig


def providers_for(device: str) -> list:
    if device.startswith("cuda"):
        _, _, index = device.partition(":")
        return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
    if device != "cpu":
        raise ValueError(f"unsupported device {device!r} (use cpu or cuda:N)")
    return ["CPUExecutionProvider"]


def open_session(model: Path | bytes, config: ModelConfig, device: str, default_threads: int = 1):
    """An InferenceSession for ``model`` (a file, or a serialised graph).

    ``config.threads`` sets the intra-op thread count (a worker fills it in from the cores it
    owns, ``workers.parallelism``); unset, as in a notebook, one thread.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = config.threads or default_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return onnxruntime.InferenceSession(source, sess_options=options, providers=providers_for(device))
