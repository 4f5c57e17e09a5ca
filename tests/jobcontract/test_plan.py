"""Job plans: what the API builds once and every other reader works from."""

import msgpack
import pytest

from jobcontract.payload import AudioOutput, JobInput
from jobcontract.plan import JobPlan, PlanFormatError, PlanStep
from speechmodels.registry import (
    AUDIO_CONVERSION,
    SPEAKER_ATTRIBUTION,
    SPEAKER_EMBEDDING,
    SPEECH_SYNTHESIS,
    TRANSCRIPTION,
    VAD,
    VOICE_CONVERSION,
)


def test_a_plain_model_is_one_step_that_is_also_the_last():
    plan = JobPlan.build("silero-vad", VAD, [("silero-vad", VAD)])
    assert plan.steps == (PlanStep("silero-vad", "silero-vad", VAD),)
    assert plan.is_last(0) and plan.part_steps == [] and plan.models() == ["silero-vad"]


def test_parts_run_first_then_a_join_on_the_same_model_then_the_filters():
    plan = JobPlan.build("piper", SPEECH_SYNTHESIS, [("piper", SPEECH_SYNTHESIS), ("rnnoise", AUDIO_CONVERSION),
                                                     ("rnnoise", AUDIO_CONVERSION)], parts=3)
    assert [step.name for step in plan.steps] == ["piper[0]", "piper[1]", "piper[2]", "join", "rnnoise", "rnnoise"]
    assert plan.part_steps == [0, 1, 2] and [step.part for step in plan.steps[:3]] == [0, 1, 2]
    join = plan.steps[3]
    assert join.is_join and join.joins == (0, 1, 2) and join.model == "piper" and not join.reads
    # each filter takes the audio of the step just before it
    assert plan.steps[4].reads == {"audio": 3} and plan.steps[5].reads == {"audio": 4}
    assert plan.models() == ["piper", "rnnoise"] and plan.last == 5


def test_each_later_step_reads_every_earlier_output_the_latest_of_each_field():
    chain = [("silero-vad", VAD), ("ov1-encoder", SPEAKER_EMBEDDING), ("ov1-synthesizer", SPEECH_SYNTHESIS),
             ("ov1-converter", VOICE_CONVERSION), ("rnnoise", AUDIO_CONVERSION)]
    plan = JobPlan.build("openvoice_v1", SPEECH_SYNTHESIS, chain)
    assert [step.reads for step in plan.steps] == [
        {}, {"vad_segments": 0}, {"vad_segments": 0, "embedding": 1},
        {"vad_segments": 0, "embedding": 1, "audio": 2},  # the converter: the speech and the voice
        {"vad_segments": 0, "embedding": 1, "audio": 3},  # the filter: the converted audio, not the base speaker's
    ]
    assert plan.name == "openvoice_v1" and plan.capability == SPEECH_SYNTHESIS


def test_a_plan_survives_its_record():
    plan = JobPlan.build("piper", SPEECH_SYNTHESIS, [("piper", SPEECH_SYNTHESIS), ("rnnoise", AUDIO_CONVERSION)],
                         parts=2)
    assert JobPlan.from_json(plan.to_json()) == plan


def test_a_plan_of_another_format_is_refused_not_guessed():
    with pytest.raises(PlanFormatError):
        JobPlan.from_json('{"name": "piper", "capability": "tts", "steps": []}')
    with pytest.raises(PlanFormatError):
        JobPlan.from_json("null")  # a record written before plans existed has none


def test_an_output_that_cannot_feed_a_step_is_not_planned():
    with pytest.raises(ValueError, match="cannot feed"):
        JobPlan.build("whisper", TRANSCRIPTION, [("diarizer", SPEAKER_ATTRIBUTION), ("rnnoise", AUDIO_CONVERSION)])
    with pytest.raises(ValueError):
        JobPlan.build("nothing", VAD, [])


def test_a_single_unstreamed_part_is_one_step_that_joins_itself():
    plan = JobPlan.build("piper", SPEECH_SYNTHESIS, [("piper", SPEECH_SYNTHESIS)], parts=1)
    assert plan.steps == (PlanStep("piper[0]", "piper", SPEECH_SYNTHESIS, part=0),)
    assert plan.is_last(0) and plan.part_steps == [0] and plan.joins_in_place(0)
    assert JobPlan.from_json(plan.to_json()) == plan
    # a stream reads its parts and a filter reads the join: both keep the join step
    streamed = JobPlan.build("piper", SPEECH_SYNTHESIS, [("piper", SPEECH_SYNTHESIS)], parts=1, streamed=True)
    filtered = JobPlan.build("piper", SPEECH_SYNTHESIS, [("piper", SPEECH_SYNTHESIS), ("rnnoise", AUDIO_CONVERSION)],
                             parts=1)
    assert [step.name for step in streamed.steps] == ["piper[0]", "join"] and not streamed.joins_in_place(0)
    assert [step.name for step in filtered.steps] == ["piper[0]", "join", "rnnoise"] and not filtered.joins_in_place(0)
    several = JobPlan.build("piper", SPEECH_SYNTHESIS, [("piper", SPEECH_SYNTHESIS)], parts=2)
    assert not any(several.joins_in_place(index) for index in range(len(several.steps)))


def test_a_part_step_sees_the_shared_fields_and_its_own():
    plan = JobPlan.build("piper", SPEECH_SYNTHESIS, [("piper", SPEECH_SYNTHESIS)], parts=2)
    job_input = JobInput({"voice": "joe", "speed": 1.0}, parts=[{"text": "One."}, {"text": "Two."}],
                         output=AudioOutput("mp3", 16_000))
    assert job_input.step_request(plan.steps[1]) == {"voice": "joe", "speed": 1.0, "text": "Two."}
    assert job_input.step_request(plan.steps[2]) == {"voice": "joe", "speed": 1.0}  # the join: no part of its own
    assert JobInput.decode(job_input.encode()) == job_input


def test_an_input_stored_by_an_older_version_is_refused():
    old = msgpack.packb({"voice": None, "parts": [{"text": "Hi."}], "output": {"format": "wav"}}, use_bin_type=True)
    with pytest.raises(PlanFormatError):
        JobInput.decode(old)
