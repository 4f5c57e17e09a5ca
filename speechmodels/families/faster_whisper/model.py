"""Whisper through faster-whisper / CTranslate2, batched ACROSS requests.

faster-whisper's own batched pipeline batches the 30 s chunks of one file. Here a
micro-batch's requests are each cut into speech chunks of at most 30 s (Silero VAD, which
faster-whisper bundles), and the chunks of all the requests that share decoding options are
packed into shared 30 s windows with silent guard gaps (``packing``; ``options.pack_windows``,
on by default), which go through one encoder pass and one ``generate`` call (in slices of
``max_chunks_per_call`` windows). Each request gets back only its own words: a chunk is given
a segment only when the per-chunk check of ``packing.clean`` places it wholly in that chunk's
part of the window (a segment Whisper ran across a gap first cut by its words,
``packing.divide``); unclean chunks are decoded again beside other neighbours, then alone.
Byte-identical chunks of one call are decoded once and each copy gets the segments. Only
requests that want segment times or words are packed: a request without them
(``segment_times`` off, no word timestamps) gets windows of its own, decoded without
timestamp tokens and encoded only as long as their audio needs (at least 10 s).
Long audio is bounded in memory by its chunks, not its features.

The family also serves voice activity detection (HSE allows Whisper models on /v1/audio/vad)
with the bundled Silero VAD; those items never reach the Whisper network.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from math import ceil
from typing import Any

import numpy as np

from speechmodels import audio
from speechmodels.base import InputError, SpeechModel, validate_params
from speechmodels.config import ModelConfig
from speechmodels.families.faster_whisper import packing
from speechmodels.stt import (
    TranscribedSegment,
    TranscribedWord,
    Transcription,
    TranscriptionParams,
)
from speechmodels.vad import VADParams, VoiceActivity
from speechmodels.weights import resolve_weights

SAMPLE_RATE = 16_000
CHUNK_SECONDS = 30
# silence between packed neighbours: pure zeros (low noise, 0.001-0.003, made Whisper hallucinate
# into the gaps: WER 0.11 -> 0.22 on the fixtures), 1.5 s (words beyond the references: 10 at
# 0.6 s, 4 at 1.0 s, 0 at 1.5 s, at the same speed)
PACK_GAP_SECONDS = 1.5
# faster-whisper's defaults for attaching punctuation to words
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
# an untimed window of one chunk is encoded only as long as its audio needs, not 30 s: Whisper's
# encoder is most of a short request's time (tiny.en int8, 2 threads, ARCTIC clips + jfk: 49 ms a
# clip at 10 s against 265 ms at 30 s, WER 0.063 against 0.097). At least 10 s: fitted to the
# clip plus 2 or 4 s, the 1.6 s clip looped ("Will we ever forget it?" five times)
MIN_ENCODED_SECONDS = 10
ENCODED_MARGIN_SECONDS = 2
# a shortened window whose text compresses more than this (faster-whisper's repetition threshold)
# is decoded again at the full 30 s
LOOP_COMPRESSION_RATIO = 2.4
COMPUTE_TYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "auto": "default"}


@dataclass
class _Chunk:
    samples: np.ndarray  # at most 30 s of speech, 16 kHz; turned into features once placed in a window
    offset: float  # seconds into the speech-only timeline
    duration: float


@dataclass
class _Item:
    params: TranscriptionParams
    duration: float
    speech: list[dict] = field(default_factory=list)  # VAD segments, samples: maps times back
    chunks: list[_Chunk] = field(default_factory=list)
    activity: VoiceActivity | None = None  # set for VAD requests, which need no decoding


@dataclass
class _Decoding:
    """What every window of one ``_transcribe`` call is decoded with, and where results go."""

    items: list[_Item]
    tokenizer: Any
    params: TranscriptionParams
    detect: bool  # no language given to a multilingual model: detected per window
    segments: dict[tuple[int, int], list[dict]]  # (item, chunk) -> its segments, once given out
    detected: dict[int, str]
    wants_words: set[int]
    # a decoded chunk -> every chunk of the call with the same audio (itself first), which get its segments
    copies: dict[tuple[int, int], list[tuple[int, int]]]
    observed: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def owners(self, ref: tuple[int, int]) -> set[int]:
        """The requests a decoded chunk's segments go to."""
        return {item for item, _ in self.copies[ref]}


def _shifted(segment: dict, seconds: float) -> dict:
    """A copy of a chunk's segment with its times (and its words') moved by ``seconds``."""
    shifted = dict(segment, start=segment["start"] + seconds, end=segment["end"] + seconds)
    if segment.get("words") is not None:
        shifted["words"] = [dict(word, start=word["start"] + seconds, end=word["end"] + seconds)
                            for word in segment["words"]]
    return shifted


def _shares_windows(params: TranscriptionParams) -> bool:
    """Whether a request is decoded with Whisper's timestamp tokens in 30 s windows, packed beside
    other requests' (``options.pack_windows``; a shared window's times say whose words are whose):
    only when it wants segment times or words. Without them its chunks get windows of their own,
    untimed (each chunk one segment) and encoded only as long as they need, which beat packing
    (2-3 s clips, 32 clients, one core: 12.6 req/s against 7.9 packed, timed and aligned). Untimed
    decoding alone, on the 10-minute bench file (tiny.en, one thread): inference 18.0 s instead of
    19.5 s, WER 0.082 instead of 0.110 (timed decoding drops a window's unfinished last segment)."""
    return params.segment_times or params.word_timestamps


def _whisper_language_codes() -> tuple[str, ...]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return _LANGUAGE_CODES


class FasterWhisper(SpeechModel):

    def __init__(self, config: ModelConfig, device: str, whisper):
        super().__init__(config, device)
        self.whisper = whisper
        # windows per encoder pass and generate call: 4 measured fastest on a CPU thread for a 10-minute
        # file (22 s; 24.5 s at 8, 28-33 s at 32, where every buffer past the worker's 16 MB mmap
        # threshold is mapped afresh, 26 s at 1)
        self.max_chunks_per_call = int(config.options.get("max_chunks_per_call", 4))
        # several requests' speech in one window (``packing``); the gap is the silence between neighbours
        self.pack_windows = bool(config.options.get("pack_windows", True))
        self.pack_gap_s = float(config.options.get("pack_gap_s", PACK_GAP_SECONDS))

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> FasterWhisper:
        from faster_whisper import WhisperModel
        from faster_whisper.utils import _MODELS as SIZE_NAMES

        device = device or config.device_config.device
        # a size name ("tiny.en") is a repo on the hub; resolve it through the same cache
        source = SIZE_NAMES.get(config.model, config.model)
        folder = resolve_weights(source, config.revision, sha256=config.sha256)
        kind, _, index = device.partition(":")
        compute_type = config.options.get("compute_type") or COMPUTE_TYPES.get(config.dtype, "default")
        whisper = WhisperModel(str(folder), device=kind, device_index=int(index or 0), compute_type=compute_type,
                               cpu_threads=config.threads or 0, local_files_only=True)
        return cls(config, device, whisper)

    @property
    def multilingual(self) -> bool:
        return bool(self.whisper.model.is_multilingual)

    @cached_property
    def languages(self) -> list[str]:
        """The languages the checkpoint has tokens and training for, in Whisper's order: a
        multilingual model's first ``num_languages`` language tokens (99 for base, 100 for
        large-v3, which adds Cantonese); an English-only model's only one."""
        if not self.multilingual:
            return ["en"]
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        tokenizer = self.whisper.hf_tokenizer
        first = tokenizer.token_to_id("<|en|>")  # Whisper's first language token
        last = first + int(self.whisper.model.num_languages)
        ids = {code: tokenizer.token_to_id(f"<|{code}|>") for code in _LANGUAGE_CODES}
        return sorted((code for code, token in ids.items() if token is not None and first <= token < last),
                      key=ids.__getitem__)

    def language_voices(self) -> dict[str, list[str]]:
        """For the model card: every language the model transcribes (no voices: it does not speak)."""
        return {language: [] for language in self.languages}

    def input_seconds(self, item: _Item) -> float:
        return item.duration

    def warmup_request(self) -> dict:
        return {"audio": audio.synthetic_clip(2.0), "task": "transcribe", "word_timestamps": True}

    def prepare(self, request: Mapping[str, Any]) -> _Item:
        if request.get("task") == "vad":
            return self._prepare_vad(request)
        params = validate_params(TranscriptionParams, request)
        if params.task == "translate" and not self.multilingual:
            raise InputError(f"model '{self.config.name}' is English-only; translation needs a multilingual model",
                             param="model", code="unsupported_task")
        if params.language is not None:
            params.language = self._checked_language(params.language)
        samples = audio.decode(request["audio"], SAMPLE_RATE, max_seconds=request.get("max_audio_seconds"))
        return self._chunk(params, samples)

    def _checked_language(self, language: str) -> str:
        """A language hint as the model's code for it; an InputError for one it does not have."""
        code = language.strip().lower()
        if code in self.languages:
            return code
        if not self.multilingual and code in _whisper_language_codes():
            raise InputError(f"language '{language}' is not supported by model '{self.config.name}': it is "
                             "English-only (language 'en' or none); other languages need a multilingual model",
                             param="language", code="unsupported_language")
        raise InputError(f"language '{language}' is not supported by model '{self.config.name}': not one of its "
                         f"{len(self.languages)} language codes (ISO 639-1, e.g. {', '.join(self.languages[:5])})",
                         param="language", code="unsupported_language")

    def _prepare_vad(self, request: Mapping[str, Any]) -> _Item:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        params = validate_params(VADParams, request)
        samples = audio.decode(request["audio"], SAMPLE_RATE, max_seconds=request.get("max_audio_seconds"))
        options = VadOptions(threshold=params.threshold, min_speech_duration_ms=params.min_speech_duration_ms,
                             min_silence_duration_ms=params.min_silence_duration_ms, speech_pad_ms=params.speech_pad_ms)
        segments = [(s["start"], s["end"]) for s in get_speech_timestamps(samples, options)]
        if not params.get_timestamps:
            timestamps = None
        elif params.return_seconds:
            timestamps = [(round(s / SAMPLE_RATE, 1), round(e / SAMPLE_RATE, 1)) for s, e in segments]
        else:
            timestamps = [(int(s), int(e)) for s, e in segments]
        return _Item(TranscriptionParams(), len(samples) / SAMPLE_RATE, activity=VoiceActivity(bool(segments), timestamps))

    def _chunk(self, params: TranscriptionParams, samples: np.ndarray) -> _Item:
        """Speech regions merged into chunks of at most 30 s."""
        from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

        speech = get_speech_timestamps(samples, VadOptions(max_speech_duration_s=CHUNK_SECONDS, min_silence_duration_ms=160))
        item = _Item(params, len(samples) / SAMPLE_RATE, speech)
        if not speech:
            return item
        pieces, metadata = collect_chunks(samples, speech, max_duration=CHUNK_SECONDS)
        for piece, meta in zip(pieces, metadata):
            item.chunks.append(_Chunk(np.asarray(piece, dtype=np.float32), meta["offset"], meta["duration"]))
        return item

    def infer_batch(self, items: Sequence[_Item]) -> list[VoiceActivity | Transcription]:
        outputs: list[Any] = [None] * len(items)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            if item.activity is not None:
                outputs[index] = item.activity
            else:
                groups[self._pack_key(index, item)].append(index)
        for indices in groups.values():
            for index, transcription in zip(indices, self._transcribe([items[i] for i in indices])):
                outputs[index] = transcription
        return outputs

    def _pack_key(self, index: int, item: _Item) -> tuple:
        """Requests that may share windows: same decoding options. A prompt conditions the whole
        window and a detected language is one per window, so those requests pack only with
        themselves."""
        p = item.params
        alone = p.prompt is not None or (p.language is None and self.multilingual)
        return p.task, p.language, p.temperature, p.beam_size, _shares_windows(p), index if alone else None

    def _transcribe(self, items: list[_Item]) -> list[Transcription]:
        """Items sharing decoding options: their chunks packed into windows, decoded together."""
        from faster_whisper.tokenizer import Tokenizer

        params = items[0].params
        language = params.language or ("en" if not self.multilingual else None)
        tokenizer = Tokenizer(self.whisper.hf_tokenizer, self.multilingual, task=params.task, language=language or "en")
        segments: dict[tuple[int, int], list[dict]] = {}
        detected: dict[int, str] = {}
        wants_words = {i for i, item in enumerate(items) if item.params.word_timestamps}
        # byte-identical chunks (the same clip sent twice, a live turn said in two sessions) are decoded
        # once: side by side in a window they were measured to come out as one repeated sentence across
        # the gap, and kept apart they cost a window each
        same_audio: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
        for i, item in enumerate(items):
            for c, chunk in enumerate(item.chunks):
                same_audio[hashlib.blake2b(chunk.samples.tobytes(), digest_size=16).digest()].append((i, c))
        copies = {refs[0]: refs for refs in same_audio.values()}
        context = _Decoding(items, tokenizer, params, language is None, segments, detected, wants_words, copies)
        failed_together: set[frozenset] = set()

        def apart(a: tuple[int, int], b: tuple[int, int]) -> bool:
            # chunks that spoiled a window together get other neighbours next
            return frozenset((a, b)) in failed_together

        pending = [(ref, items[ref[0]].chunks[ref[1]].duration) for ref in context.copies]
        # the call's requests all want times or words (decoded timed, packed if pack_windows) or none do
        timed = _shares_windows(params)
        gap = self.pack_gap_s if self.pack_windows and timed else None
        for attempt in range(3):  # packed; the unclean chunks packed with new neighbours; one window each
            windows = packing.pack(pending, gap_s=gap if attempt < 2 else None, apart=apart)
            unclean: list[list[packing.Placed]] = []
            for start in range(0, len(windows), self.max_chunks_per_call):
                unclean += self._decode(context, windows[start : start + self.max_chunks_per_call], timed)
            if not any(unclean):
                break
            for chunks in unclean:
                failed_together.update(frozenset((a.ref, b.ref)) for a, b in itertools.combinations(chunks, 2))
            pending = [(place.ref, place.duration) for chunks in unclean for place in chunks]
        if context.observed:
            self.observe(context.observed)
        return [self._assemble(i, item, segments, detected.get(i, language or "en")) for i, item in enumerate(items)]

    def _window_features(self, items: list[_Item], window: packing.Window, frames: int) -> np.ndarray:
        """The window's audio (chunks at their places, silence between) as log-mel features padded
        (with silence) to ``frames``."""
        from faster_whisper.audio import pad_or_trim

        samples = np.zeros(int(round(window.used * SAMPLE_RATE)), dtype=np.float32)
        for place in window.placed:
            i, c = place.ref
            piece = items[i].chunks[c].samples
            at = int(round(place.start * SAMPLE_RATE))
            samples[at : at + len(piece)] = piece[: len(samples) - at]
        return pad_or_trim(self.whisper.feature_extractor(samples)[..., :-1], frames).astype(np.float32)

    def _encoded_frames(self, windows: list[packing.Window]) -> int:
        """How many feature frames a call's untimed windows are encoded with: what the longest needs
        (timed windows are encoded at 30 s: timestamp tokens and word alignment assume it)."""
        full = self.whisper.feature_extractor.nb_max_frames
        seconds = max(MIN_ENCODED_SECONDS, max(window.used for window in windows) + ENCODED_MARGIN_SECONDS)
        return min(full, 2 * ceil(seconds * self.whisper.frames_per_second / 2))  # even: the encoder's stride

    def _decode(self, context: _Decoding, windows: list[packing.Window], timed: bool = True,
                shorten: bool = True) -> list[list[packing.Placed]]:
        """ONE encoder pass and ONE generate call for these windows, whoever's speech they hold,
        with timestamp tokens or (``timed`` False: windows of one chunk) without, and then shorter
        than 30 s unless ``shorten`` is False.
        The clean chunks' segments go into ``context.segments``; returned: each window's others."""
        import ctranslate2
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

        items, tokenizer, params = context.items, context.tokenizer, context.params
        full = self.whisper.feature_extractor.nb_max_frames
        frames = full if timed or not shorten else self._encoded_frames(windows)
        encoded = self.whisper.encode(np.stack([self._window_features(items, window, frames) for window in windows]))
        previous = tokenizer.encode(" " + params.prompt.strip()) if params.prompt else []
        prompt = self.whisper.get_prompt(tokenizer, previous_tokens=previous, without_timestamps=not timed)
        prompts = [list(prompt) for _ in windows]
        if context.detect:  # multilingual model, no language given: one per window (of one request), same prompt shape
            position = prompt.index(tokenizer.language)
            for row, (window, candidates) in enumerate(zip(windows, self.whisper.model.detect_language(encoded))):
                code = candidates[0][0]
                prompts[row][position] = tokenizer.tokenizer.token_to_id(code)
                context.detected.setdefault(window.placed[0].ref[0], code.strip("<|>"))
        sampling = {"sampling_temperature": params.temperature, "sampling_topk": 0, "beam_size": 1} \
            if params.temperature > 0 else {"beam_size": params.beam_size}
        results = self.whisper.model.generate(
            encoded, prompts, patience=1, length_penalty=1, max_length=self.whisper.max_length,
            suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            return_scores=True, return_no_speech_prob=True, **sampling)
        # a shortened window that came out as a loop is decoded again at 30 s (its own call)
        looped = {row for row, result in enumerate(results) if frames < full and get_compression_ratio(
            tokenizer.decode(result.sequences_ids[0])) > LOOP_COMPRESSION_RATIO}
        unclean: list[list[packing.Placed]] = []
        if looped:
            context.observed["stt_short_windows_decoded_again"].append(len(looped))
            unclean += self._decode(context, [windows[row] for row in sorted(looped)], timed, shorten=False)
        encoded_rows = np.asarray(encoded) if any(len(w.placed) > 1 or context.wants_words for w in windows) else None
        for row, (window, result) in enumerate(zip(windows, results)):
            if row in looped:
                continue
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            size = int(ceil(window.used) * self.whisper.frames_per_second)
            pieces, _, _ = self.whisper._split_segments_by_timestamps(
                tokenizer=tokenizer, tokens=tokens, time_offset=0.0, segment_size=size,
                segment_duration=window.used, seek=0)
            decoded = [{"text": tokenizer.decode(p["tokens"]), "tokens": p["tokens"], "start": p["start"],
                        "end": p["end"], "avg_logprob": avg_logprob, "no_speech_prob": result.no_speech_prob,
                        "seek": 0} for p in pieces]
            spans = [(p["start"], p["end"]) for p in pieces]  # the timestamp tokens, before alignment moves them
            # a shared window is always aligned: its words are half of the check of whose a segment is;
            # a window of one request only when it asked for word times. Per window, so one window's
            # timing heuristics never reach another's
            owners = set().union(*(context.owners(place.ref) for place in window.placed))
            if decoded and (len(window.placed) > 1 or owners & context.wants_words):
                own = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded_rows[row : row + 1]))
                self.whisper.add_word_timestamps([decoded], tokenizer, own, [size], PREPEND_PUNCTUATIONS,
                                                 APPEND_PUNCTUATIONS, 0.0)
            spans, decoded = packing.divide(window, spans, decoded)  # a segment run across a gap, cut by words
            clean = packing.clean(window, spans, decoded)
            unclean.append([place for place, ok in zip(window.placed, clean) if not ok])
            if len(window.placed) > 1:
                context.observed["stt_chunks_decoded_again"].append(len(unclean[-1]))
            if any(clean):
                context.observed["stt_requests_per_window"].append(
                    len({place.ref[0] for place, ok in zip(window.placed, clean) if ok}))
                context.observed["stt_window_fill"].append(window.used / packing.WINDOW_SECONDS)
            for place, ok, own_segments in zip(window.placed, clean, packing.split(window, spans, decoded)):
                if not ok:
                    continue
                for segment in own_segments:
                    segment["compression_ratio"] = get_compression_ratio(segment["text"])
                for i, c in context.copies[place.ref]:
                    context.segments[(i, c)] = [_shifted(segment, items[i].chunks[c].offset) for segment in own_segments]
        return unclean

    def _assemble(self, index: int, item: _Item, segments: dict, language: str) -> Transcription:
        """Chunk segments in order, with times mapped from the speech-only timeline back to the audio."""
        from faster_whisper.transcribe import Segment, Word, restore_speech_timestamps

        ordered = []
        for c in range(len(item.chunks)):
            for piece in segments[(index, c)]:
                words = [Word(**word) for word in piece["words"]] if item.params.word_timestamps else None
                ordered.append(Segment(id=len(ordered), seek=0, start=piece["start"], end=piece["end"],
                                       text=piece["text"], tokens=piece["tokens"], avg_logprob=piece["avg_logprob"],
                                       compression_ratio=piece["compression_ratio"],
                                       no_speech_prob=piece["no_speech_prob"], words=words,
                                       temperature=item.params.temperature))
        restored = list(restore_speech_timestamps(ordered, item.speech, SAMPLE_RATE)) if item.speech else ordered

        def clamp(seconds: float) -> float:  # a timestamp token can point past the audio's end
            return round(min(max(float(seconds), 0.0), item.duration), 3)

        result = [
            TranscribedSegment(
                id=s.id, start=clamp(s.start), end=clamp(s.end), text=s.text, tokens=list(s.tokens),
                avg_logprob=float(s.avg_logprob), compression_ratio=float(s.compression_ratio),
                no_speech_prob=float(s.no_speech_prob), temperature=float(s.temperature),
                words=None if s.words is None else [
                    TranscribedWord(w.word, clamp(w.start), clamp(w.end), float(w.probability)) for w in s.words])
            for s in restored]
        text = "".join(segment.text for segment in result).strip()
        return Transcription(text=text, language=language, duration=round(item.duration, 3), task=item.params.task,
                             segments=result)
