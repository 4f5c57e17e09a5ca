"""Silero's sequence export (``silero_vad_16k_sequence.onnx``, shipped since silero-vad 6.2) made
to step a batch of streams.

The export runs its convolutional front end over all of one stream's windows at once and its
LSTM over the whole sequence in one operator, so a session run costs what its windows cost; the
window-by-window graph (``scan``) pays each node's dispatch once per window instead, ~0.2 ms a
window whatever the batch size, which small batches (the fleet's, more than an in-process
loop's) feel most: ``bench/bench_vad_graphs.py`` prints both per clip at batches of 1-16. The
export takes one stream (frames ``(steps, 576)``, state ``h``/``c`` of batch 1); this wraps it so
the frames of a batch are flattened into the front end's batch and unflattened into the LSTM's.
"""

from __future__ import annotations

from pathlib import Path

#: what the export's graph must read and write for the wrapping below to be valid
_EXPORT_INPUTS = {"input", "h", "c"}
_EXPORT_OUTPUTS = {"speech_probs", "hn", "cn"}


def batched_sequence_graph(onnx_file: Path, frame_size: int, state_size: int) -> bytes:
    """A serialised model with the ``scan`` graph's interface: inputs ``state0`` (2, batch,
    ``state_size``: h then c) and ``frames`` (steps, batch, ``frame_size``), outputs
    ``state_final`` and ``probabilities`` (steps, batch, 1)."""
    import onnx
    from onnx import TensorProto, helper

    export = onnx.load(str(onnx_file))
    graph = export.graph
    names = ({value.name for value in graph.input}, {value.name for value in graph.output})
    if names != (_EXPORT_INPUTS, _EXPORT_OUTPUTS):
        raise ValueError(f"{onnx_file} is not a Silero VAD sequence export (inputs and outputs {names})")
    nodes = list(graph.node)
    lstm_at = [index for index, node in enumerate(nodes) if node.op_type == "LSTM"]
    final_at = [index for index, node in enumerate(nodes) if "speech_probs" in node.output]
    if len(lstm_at) != 1 or len(final_at) != 1 or nodes[final_at[0]].op_type != "Reshape":
        raise ValueError(f"{onnx_file}: expected one LSTM and a final Reshape to speech_probs")
    lstm, final = nodes[lstm_at[0]], nodes[final_at[0]]

    def constant(name: str, values: list[int]):
        return helper.make_node("Constant", [], [name],
                                value=helper.make_tensor(f"{name}_value", TensorProto.INT64, [len(values)], values))

    # the front end sees (steps * batch, frame) rows; the LSTM wants (steps, batch, features)
    head = [
        constant("seq_flat_shape", [-1, frame_size]),
        helper.make_node("Reshape", ["frames", "seq_flat_shape"], ["input"]),
        helper.make_node("Shape", ["frames"], ["seq_frames_shape"], start=0, end=2),
        constant("seq_split_sizes", [1, 1]),
        helper.make_node("Split", ["state0", "seq_split_sizes"], ["h", "c"], axis=0),
    ]
    features = lstm.input[0]  # (steps * batch, 1, features): the front end's last output
    unflatten = [
        constant("seq_feature_size", [-1]),
        helper.make_node("Concat", ["seq_frames_shape", "seq_feature_size"], ["seq_lstm_shape"], axis=0),
        helper.make_node("Reshape", [features, "seq_lstm_shape"], ["seq_lstm_input"]),
    ]
    del lstm.input[0]
    lstm.input.insert(0, "seq_lstm_input")
    # the decoder's Sigmoid gives (batch, 1, steps); the scan interface is (steps, batch, 1)
    tail = [
        helper.make_node("Transpose", [final.input[0]], ["probabilities"], perm=[2, 0, 1]),
        helper.make_node("Concat", ["hn", "cn"], ["state_final"], axis=0),
    ]
    body = nodes[: lstm_at[0]] + unflatten + nodes[lstm_at[0] : final_at[0]] + nodes[final_at[0] + 1 :]
    model_graph = helper.make_graph(
        head + body + tail, "silero_sequence_batched",
        inputs=[helper.make_tensor_value_info("state0", TensorProto.FLOAT, [2, None, state_size]),
                helper.make_tensor_value_info("frames", TensorProto.FLOAT, [None, None, frame_size])],
        outputs=[helper.make_tensor_value_info("state_final", TensorProto.FLOAT, [2, None, state_size]),
                 helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None, 1])],
        initializer=list(graph.initializer))
    model = helper.make_model(model_graph, opset_imports=export.opset_import, ir_version=export.ir_version)
    onnx.checker.check_model(model)
    return model.SerializeToString()
