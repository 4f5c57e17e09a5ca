"""Silero VAD's two ways of stepping a batch, in-process on one core: CPU per 10 s clip at batch
sizes 1-16 through the sequence export (what the bundled weights run) and through the window
graph in a ``Scan`` (weights without the export), in alternating repeats, and their ratio.

The fleet's batches are smaller than an in-process loop's (part of the requests are always in
HTTP, the API or Redis), so what a small batch costs is what the fleet pays more than its limit.

    flock /tmp/bench.lock .venv/bin/python bench/bench_vad_graphs.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from harness import FIXTURES

from speechmodels import ModelConfig, audio
from speechmodels.families.silero_vad.model import CONTEXT, SAMPLE_RATE, STATE_SIZE, WINDOW, SileroVAD
from speechmodels.families.silero_vad.scan import scanned_graph
from speechmodels.families.silero_vad.sequence import batched_sequence_graph
from speechmodels.onnx import open_session
from speechmodels.weights import find_file, resolve_weights

BATCH_SIZES = (1, 2, 4, 8, 16)
CLIPS_PER_MEASURE = 32


def graphs(config: ModelConfig) -> dict[str, SileroVAD]:
    root = resolve_weights(config.model, config.revision)
    window_graph = find_file(root, "data/silero_vad.onnx")
    built = {"sequence export": batched_sequence_graph(find_file(root, "data/silero_vad_16k_sequence.onnx"),
                                                       CONTEXT + WINDOW, STATE_SIZE),
             "window graph in a scan": scanned_graph(window_graph, CONTEXT + WINDOW, STATE_SIZE, SAMPLE_RATE)}
    return {name: SileroVAD(config, "cpu", open_session(graph, config, "cpu")) for name, graph in built.items()}


def cpu_ms_per_clip(model: SileroVAD, clip, batch: int) -> float:
    calls = max(1, CLIPS_PER_MEASURE // batch)
    started = time.process_time()
    for _ in range(calls):
        model.speech_probabilities([clip] * batch)
    return (time.process_time() - started) / (calls * batch) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = ModelConfig(name="silero-vad", model="package:silero_vad", model_type="SileroVAD", threads=1)
    models = graphs(config)
    clip = audio.decode((FIXTURES / "jfk.flac").read_bytes(), SAMPLE_RATE)[: 10 * SAMPLE_RATE]
    for model in models.values():
        model.speech_probabilities([clip] * 16)  # warm-up
    print(f"Silero VAD, 10 s clips, 1 thread: CPU ms per clip, median of {args.repeats} alternating repeats")
    print(f"  {'batch':>5}  " + "  ".join(f"{name:>22}" for name in models) + "   scan / sequence")
    for batch in BATCH_SIZES:
        samples: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.repeats):
            for name, model in models.items():
                samples[name].append(cpu_ms_per_clip(model, clip, batch))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        print(f"  {batch:>5}  " + "  ".join(f"{medians[name]:22.1f}" for name in models)
              + f"   {medians['window graph in a scan'] / medians['sequence export']:5.2f}")


if __name__ == "__main__":
    main()
