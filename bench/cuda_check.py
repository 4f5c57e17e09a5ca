"""The torch families' CUDA path, for a machine with a GPU (not part of CI).

1. Equivalence: each family loads on the CPU and on CUDA from the same random checkpoint in
   its published layout (``tests/checkpoints.py``), runs the same seeded request through
   ``prepare`` + ``infer_batch`` (what a worker does), and the outputs are compared.
2. Speed: the full published sizes (random weights) on 10 s of audio or four sentences,
   CUDA against this machine's CPU, in one run.

    python bench/cuda_check.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechmodels import ModelConfig, load_model  # noqa: E402
from speechmodels.audio import synthetic_clip  # noqa: E402
from speechmodels.families.harmonyspeech_synthesizer import SynthesizedMel  # noqa: E402
from speechmodels.families.voicefixer.model import RestoredMel  # noqa: E402
from tests import checkpoints  # noqa: E402

# the accelerator to compare with the CPU ("cpu" makes a dry run of this script anywhere)
ACCELERATOR = os.environ.get("CHECK_DEVICE", "cuda")
TEXT = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."


def _as_array(output) -> np.ndarray:
    if isinstance(output, RestoredMel):
        return np.concatenate([segment.ravel() for segment in output.segments])
    for name in ("samples", "mel"):
        if hasattr(output, name):
            return np.asarray(getattr(output, name), dtype=np.float32)
    return np.asarray(output, dtype=np.float32)


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _run(model, request: dict):
    started = time.perf_counter()
    (output,) = model.infer_batch([model.prepare(request)])
    if isinstance(output, Exception):
        raise output
    _synchronize(model.device)
    return output, time.perf_counter() - started


def equivalence(folder: Path) -> None:
    ov1 = checkpoints.build_openvoice_v1(folder / "openvoice")
    ov2 = checkpoints.build_openvoice_v2(folder / "openvoicev2")
    melo = checkpoints.build_melotts(folder / "melo")
    harmony = checkpoints.build_harmonyspeech(folder / "harmony")
    voicefixer = folder / "voicefixer"
    checkpoints.build_voicefixer(voicefixer)
    clip = synthetic_clip(4.0)
    hs_mel = None
    vf_mel = None
    cases = [
        ("OpenVoiceV1Synthesizer", ov1, {}, lambda: {"text": TEXT, "voice": "cheerful", "seed": 1}),
        ("MeloTTSSynthesizer", melo, {}, lambda: {"text": TEXT, "voice": "EN-BR", "seed": 1}),
        ("OpenVoiceV2ToneConverterEncoder", ov2, {}, lambda: {"audio": clip}),
        ("OpenVoiceV2ToneConverter", ov2, {}, lambda: {"source_audio": clip, "tau": 0.0,
                                                      "embedding": np.full(checkpoints.OV_GIN, 0.1, "<f4").tobytes()}),
        ("HarmonySpeechSynthesizer", harmony, {}, lambda: {
            "text": TEXT, "embedding": np.full(checkpoints.HS_EMBEDDING, 0.25, "<f4").tobytes()}),
        ("HarmonySpeechVocoder", harmony, {}, lambda: {"mel": hs_mel}),
        ("VoiceFixerRestorer", voicefixer, {"hop_length": checkpoints.VF_HOP}, lambda: {"audio": clip}),
        ("VoiceFixerVocoder", voicefixer, {}, lambda: {"mel": vf_mel}),
    ]
    print(f"{'family':34} {'samples cpu/cuda':>18} {'max |diff|':>11} {'max |cpu|':>10}")
    for family, path, options, request in cases:
        outputs = []
        for device in ("cpu", ACCELERATOR):
            model = load_model(ModelConfig(name=family, model=str(path), model_type=family, options=options),
                               device=device)
            model.warm_up()
            outputs.append(_run(model, request())[0])
        cpu, cuda = (_as_array(output) for output in outputs)
        if family == "HarmonySpeechSynthesizer":
            hs_mel = SynthesizedMel(cpu).to_bytes()
        if family == "VoiceFixerRestorer":
            vf_mel = outputs[0].to_bytes()
        n = min(cpu.size, cuda.size)
        diff = float(np.abs(cpu.ravel()[:n] - cuda.ravel()[:n]).max()) if n else float("nan")
        print(f"{family:34} {f'{cpu.size}/{cuda.size}':>18} {diff:11.2e} {float(np.abs(cpu).max()):10.3f}")


def speed() -> None:
    from speechmodels.families.melotts.network import MeloConfig, MeloNetwork
    from speechmodels.families.openvoice.base_speaker import (
        BaseSpeaker,
        BaseSpeakerConfig,
    )
    from speechmodels.families.openvoice.network import ConverterConfig, ToneConverter

    torch.manual_seed(0)
    ids = torch.randint(1, 60, (1, 2 * 90 + 1))
    melo_config = MeloConfig.model_validate({
        **checkpoints.MELO_CONFIG["data"], "symbols": checkpoints.MELO_SYMBOLS, "num_tones": 16, "num_languages": 8,
        "upsample_rates": [8, 8, 2, 2, 2], "upsample_kernel_sizes": [16, 16, 8, 2, 2]})
    audio = torch.randn(1, 22_050 * 10) * 0.1
    networks = {
        "OpenVoice V1 base speaker": (BaseSpeaker(BaseSpeakerConfig(symbols=checkpoints.OV1_SYMBOLS,
                                                                    speakers=checkpoints.OV1_STYLES)),
                                      lambda net, dev: net.synthesize({"ids": ids.to(dev)}, 1,
                                                                      generator=torch.Generator().manual_seed(0))),
        "MeloTTS": (MeloNetwork(melo_config),
                    lambda net, dev: net.synthesize({"ids": ids.to(dev) % 40, "tones": torch.full_like(ids, 7).to(dev),
                                                     "languages": torch.full_like(ids, 2).to(dev)}, 0,
                                                    generator=torch.Generator().manual_seed(0))),
        "OpenVoice converter, 10 s": (ToneConverter(ConverterConfig(zero_g=True)),
                                      lambda net, dev: net.convert(audio.to(dev), torch.zeros(256, device=dev),
                                                                   torch.ones(256, device=dev) * 0.1, 0.0)),
    }
    print(f"\n{'full size, random weights':28} {'cpu s':>8} {'cuda s':>8} {'cpu/cuda':>9}")
    for name, (network, call) in networks.items():
        times = {}
        for device in ("cpu", ACCELERATOR):
            net = network.to(device).eval()
            call(net, device)  # warm-up
            _synchronize(device)
            started = time.perf_counter()
            for _ in range(3):
                call(net, device)
            _synchronize(device)
            times[device] = (time.perf_counter() - started) / 3
        print(f"{name:28} {times['cpu']:8.3f} {times[ACCELERATOR]:8.3f} {times['cpu'] / times[ACCELERATOR]:9.1f}")


if __name__ == "__main__":
    if ACCELERATOR.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device")
    name = torch.cuda.get_device_name(0) if ACCELERATOR.startswith("cuda") else ACCELERATOR
    print(torch.__version__, name, f"{torch.get_num_threads()} CPU threads")
    with tempfile.TemporaryDirectory() as folder:
        equivalence(Path(folder))
    speed()
