"""The toolchain declarations: every step names a family that exists and does that step."""

from speechmodels.registry import MODEL_FAMILIES, SPEAKER_EMBEDDING, VAD
from speechmodels.toolchains import TOOLCHAINS


def test_every_step_is_a_family_that_does_it_or_any_model_that_can():
    for toolchain in TOOLCHAINS.values():
        for capability, steps in toolchain.routes.items():
            assert steps, (toolchain.name, capability)
            for step in steps:
                if step.model_type is not None:
                    assert step.capability in MODEL_FAMILIES[step.model_type].capabilities, (toolchain.name, step)
                else:
                    assert any(step.capability in family.capabilities for family in MODEL_FAMILIES.values())


def test_a_route_ends_in_its_own_capability_or_a_step_that_makes_its_output():
    ends = {(name, capability): steps[-1].capability for name, toolchain in TOOLCHAINS.items()
            for capability, steps in toolchain.routes.items()}
    assert ends == {("harmonyspeech", "tts"): "vocode_mel", ("openvoice_v1", "tts"): "voice_convert",
                    ("openvoice_v1", "voice_convert"): "voice_convert", ("openvoice_v2", "tts"): "voice_convert",
                    ("openvoice_v2", "voice_convert"): "voice_convert", ("voicefixer", "convert"): "vocode_mel",
                    ("diarization", "diarize"): "diarize"}


def test_the_reference_clip_steps_are_skipped_by_what_stands_in_for_them():
    for name in ("openvoice_v1", "openvoice_v2"):
        vad, encoder, *_ = TOOLCHAINS[name].routes["tts"]
        assert vad.capability == VAD and vad.model_type is None
        assert {"input_vad_data", "input_embedding"} <= set(vad.skipped_by)
        assert encoder.capability == SPEAKER_EMBEDDING and "input_embedding" in encoder.skipped_by
        # a VAD step must hand on segments in seconds, and a Whisper model must do VAD for it
        assert vad.request == {"get_timestamps": True, "return_seconds": True, "task": "vad"}
    assert TOOLCHAINS["harmonyspeech"].routes["tts"][0].skipped_by == ("input_embedding",)
