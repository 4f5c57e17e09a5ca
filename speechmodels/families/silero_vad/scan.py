"""Silero's one-window graph wrapped in an ONNX ``Scan``: one session run steps a batch through
many windows, carrying the recurrent state inside onnxruntime.

Stepping window by window from Python costs a session run per 32 ms of audio (312 for a 10 s
clip), and each run gives the GIL up and takes it back. In a worker whose other threads
(Celery's, the task threads) hold the GIL meanwhile, each retake is a wait: measured through
``speechfleet serve`` (10 s clips, 32 clients), the batching threads woke ~500 times a second
and spent a fifth of their time blocked. The scanned graph computes the same windows with the
same kernels (identical probabilities), taking the GIL twice per run.
"""

from __future__ import annotations

from pathlib import Path


def scanned_graph(onnx_file: Path, frame_size: int, state_size: int, sample_rate: int) -> bytes:
    """A serialised model with inputs ``state0`` (2, batch, ``state_size``) and ``frames`` (steps,
    batch, ``frame_size``), outputs ``state_final`` and ``probabilities`` (steps, batch, 1): the
    file's graph (inputs ``input``, ``state``, ``sr``; outputs ``output``, ``stateN``) run once
    per step at ``sample_rate``."""
    import onnx
    from onnx import TensorProto, helper

    step = onnx.load(str(onnx_file))
    names = ({value.name for value in step.graph.input}, {value.name for value in step.graph.output})
    if names != ({"input", "state", "sr"}, {"output", "stateN"}):
        raise ValueError(f"{onnx_file} is not a Silero VAD step graph (inputs and outputs {names})")

    def tensor(name: str, elem_type: int, shape: list) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, elem_type, shape)

    # Scan's body: carried state first, then the scanned slice; the same order for its outputs.
    # ``sr`` and the step graph's initializers are read from the outer graph.
    body = helper.make_graph(
        list(step.graph.node), "silero_step",
        inputs=[tensor("state", TensorProto.FLOAT, [2, None, state_size]),
                tensor("input", TensorProto.FLOAT, [None, frame_size])],
        outputs=[tensor("stateN", TensorProto.FLOAT, [2, None, state_size]),
                 tensor("output", TensorProto.FLOAT, [None, 1])])
    rate = helper.make_node("Constant", [], ["sr"],
                            value=helper.make_tensor("sr_value", TensorProto.INT64, [], [sample_rate]))
    scan = helper.make_node("Scan", ["state0", "frames"], ["state_final", "probabilities"], body=body,
                            num_scan_inputs=1)
    graph = helper.make_graph(
        [rate, scan], "silero_scan",
        inputs=[tensor("state0", TensorProto.FLOAT, [2, None, state_size]),
                tensor("frames", TensorProto.FLOAT, [None, None, frame_size])],
        outputs=[tensor("state_final", TensorProto.FLOAT, [2, None, state_size]),
                 tensor("probabilities", TensorProto.FLOAT, [None, None, 1])],
        initializer=list(step.graph.initializer))
    model = helper.make_model(graph, opset_imports=step.opset_import, ir_version=step.ir_version)
    onnx.checker.check_model(model)
    return model.SerializeToString()
