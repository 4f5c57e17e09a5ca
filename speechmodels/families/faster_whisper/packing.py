"""Window packing: the speech of several requests decoded in one 30 s Whisper window.

Whisper's encoder always processes a 30 s window, so eight 3-second requests decoded one
window each pay for eight windows. Packed, their speech chunks lie end to end in shared
windows with a guard gap of silence between neighbours; one encoder pass and one ``generate``
serve them all, and the decoded segments are given back chunk by chunk.

A chunk's text is given out only when it is unambiguous whose it is (``clean``):

- every window is cut at the midpoint of each guard gap into regions, one per chunk;
- a segment belongs to a region only when all its aligned words lie in that region AND its
  timestamp tokens overlap no other chunk's audio (beyond ``SPAN_SLACK_S``); a
  segment reaching into two regions (measured: two byte-identical neighbours decoded as one
  repeated sentence, a last word timed past the gap midpoint) spoils every region it touches;
- a chunk is clean when no unclean segment touches its region and it got some text.

A segment that runs across a gap (Whisper put no boundary in it) is first cut by its aligned
words (``divide``), when every word sits clearly on one side of every gap midpoint and the
words' sides run in order; the pieces then face the same check as any segment.

Clean chunks keep their segments (times shifted onto their own audio); the others are decoded
again, first packed with neighbours they have not shared a window with, then, if that fails
too, one window each, which is how they would have been decoded unpacked. So a word reaches a
request only from a segment wholly inside that request's own region of the window.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

WINDOW_SECONDS = 30.0
# how far a segment's timestamp tokens may reach into a neighbour's audio and still be wholly
# its own chunk's: Whisper (tiny.en) puts a boundary anywhere in a gap, often at the onset of the
# next speech (measured on tightly cut Piper sentences: 0.06-0.21 s into the next chunk) or on
# a whole second; requiring the tokens inside the gap midpoints spoiled 6 windows of 7
SPAN_SLACK_S = 0.3
# how far from a gap's midpoint a word's midpoint must be for ``divide`` to cut a segment there:
# the neighbours' audio lies half a gap (0.75 s by default) from the midpoint, so this leaves
# half a second of error in the word's alignment
CUT_MARGIN_S = 0.25


@dataclass(frozen=True)
class Placed:
    ref: Hashable  # whose chunk this is (the family uses (item index, chunk index))
    start: float  # seconds into the window
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass
class Window:
    gap_s: float
    placed: list[Placed] = field(default_factory=list)

    @property
    def used(self) -> float:
        """Seconds of the window holding audio (chunks and the gaps between them)."""
        return self.placed[-1].end if self.placed else 0.0

    def room_for(self, duration: float, capacity_s: float) -> bool:
        needed = duration if not self.placed else self.used + self.gap_s + duration
        return needed <= capacity_s + 1e-9

    def add(self, ref: Hashable, duration: float) -> None:
        start = self.used + self.gap_s if self.placed else 0.0
        self.placed.append(Placed(ref, start, duration))

    @property
    def cuts(self) -> list[float]:
        """Region boundaries: the midpoint of every gap."""
        return [(a.end + b.start) / 2 for a, b in itertools.pairwise(self.placed)]

    def owner(self, seconds: float) -> int:
        """The index of the chunk whose region holds this instant of the window."""
        return bisect.bisect_right(self.cuts, seconds)


def pack(chunks: Sequence[tuple[Hashable, float]], *, gap_s: float | None, capacity_s: float = WINDOW_SECONDS,
         apart: Callable[[Hashable, Hashable], bool] | None = None) -> list[Window]:
    """Chunks ``(ref, seconds)`` placed into windows: first fit, longest first (fewest windows
    for the usual mix); two chunks for which ``apart(a, b)`` holds never share a window.
    ``gap_s=None`` turns packing off: one window per chunk, as unpacked."""
    windows: list[Window] = []
    if gap_s is None:
        for ref, duration in chunks:
            windows.append(Window(0.0))
            windows[-1].add(ref, duration)
        return windows

    def fits(window: Window, ref: Hashable, duration: float) -> bool:
        return window.room_for(duration, capacity_s) and not (apart and any(apart(ref, p.ref) for p in window.placed))

    for ref, duration in sorted(chunks, key=lambda chunk: -chunk[1]):
        window = next((w for w in windows if fits(w, ref, duration)), None)
        if window is None:
            window = Window(gap_s)
            windows.append(window)
        window.add(ref, duration)
    return windows


def _regions(window: Window, span: tuple[float, float], segment: dict) -> set[int]:
    """Every region a segment reaches: each aligned word's, by its midpoint, and every chunk whose
    audio its timestamp tokens overlap by more than ``SPAN_SLACK_S`` (any overlap, for a segment
    without aligned words, which also reaches the region of its midpoint)."""
    start, end = span
    words = segment.get("words") or []
    slack = SPAN_SLACK_S if words else 0.0
    reached = {r for r, place in enumerate(window.placed) if min(end, place.end) - max(start, place.start) > slack}
    reached.update(window.owner((w["start"] + w["end"]) / 2) for w in words)
    if not words:
        reached.add(window.owner((start + end) / 2))
    return reached


def divide(window: Window, spans: Sequence[tuple[float, float]],
           segments: Sequence[dict]) -> tuple[list[tuple[float, float]], list[dict]]:
    """The window's segments, with each one that reaches several regions cut into one piece per
    region by its aligned words (measured: tiny.en often runs one segment across a gap, which
    made both chunks decode again). A segment is cut only when each of its words has its midpoint
    at least ``CUT_MARGIN_S`` from every gap midpoint and the words' regions rise in order;
    otherwise it stays whole (and spoils what it touches). A piece's span is its words' extent,
    its ``tokens`` empty (they are not split); ``clean`` then judges the pieces as segments."""
    out_spans: list[tuple[float, float]] = []
    out_segments: list[dict] = []
    for span, segment in zip(spans, segments):
        pieces = _by_words(window, segment) if len(_regions(window, span, segment)) > 1 else None
        if pieces is None:
            out_spans.append(span)
            out_segments.append(segment)
            continue
        for piece in pieces:
            out_spans.append((piece["start"], piece["end"]))
            out_segments.append(piece)
    return out_spans, out_segments


def _by_words(window: Window, segment: dict) -> list[dict] | None:
    """A segment's words grouped into consecutive runs by region, as segments; None when a word
    is too near a gap midpoint, the regions go back, or the words are all in one region."""
    runs: list[tuple[int, list[dict]]] = []
    for word in segment.get("words") or []:
        middle = (word["start"] + word["end"]) / 2
        if any(abs(middle - cut) < CUT_MARGIN_S for cut in window.cuts):
            return None
        region = window.owner(middle)
        if runs and region < runs[-1][0]:
            return None
        if runs and region == runs[-1][0]:
            runs[-1][1].append(word)
        else:
            runs.append((region, [word]))
    if len(runs) < 2:
        return None
    return [dict(segment, text="".join(word["word"] for word in run), tokens=[], start=run[0]["start"],
                 end=run[-1]["end"], words=run) for _, run in runs]


def clean(window: Window, spans: Sequence[tuple[float, float]], segments: Sequence[dict]) -> list[bool]:
    """For each placed chunk, whether its text can be given out: no decoded segment reaches both
    its region and another (``spans``: each segment's own timestamp tokens, before alignment
    moves them) and some segment lies in its region. A window of one chunk is always clean."""
    if len(window.placed) == 1:
        return [True]
    own = [False] * len(window.placed)
    spoiled = [False] * len(window.placed)
    for span, segment in zip(spans, segments):
        reached = _regions(window, span, segment)
        for region in reached:
            if len(reached) > 1:
                spoiled[region] = True
            else:
                own[region] = True
    return [has and not bad for has, bad in zip(own, spoiled)]


def split(window: Window, spans: Sequence[tuple[float, float]], segments: Sequence[dict]) -> list[list[dict]]:
    """A window's decoded segments (window times; ``words`` from alignment, or absent) as each
    placed chunk's own segments, with times relative to the start of that chunk. A segment goes
    to the one region it reaches, by the same rule as ``clean``; one reaching several goes to
    none (every region it touches is unclean and decoded again). Assigning by where the timestamp
    tokens start instead gave a segment whose boundary Whisper put before a gap's midpoint to the
    previous chunk: the chunk it belonged to was called clean without it, and when the previous
    one was decoded again the sentence was lost (the streamed 2-minute file, WER 0.34)."""
    regions: list[list[dict]] = [[] for _ in window.placed]
    for span, segment in zip(spans, segments):
        reached = _regions(window, span, segment)
        if len(reached) == 1:
            regions[reached.pop()].append(dict(segment))
    return [[_onto(place, piece) for piece in pieces] for place, pieces in zip(window.placed, regions)]


def _onto(place: Placed, piece: dict) -> dict:
    """Window times clamped into this chunk's audio and made relative to its start."""

    def local(seconds: float) -> float:
        return min(max(float(seconds), place.start), place.end) - place.start

    piece["start"], piece["end"] = local(piece["start"]), local(piece["end"])
    if piece.get("words"):
        piece["words"] = [dict(word, start=local(word["start"]), end=local(word["end"])) for word in piece["words"]]
    return piece
