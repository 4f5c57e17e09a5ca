"""Window packing: the speech of several requests decoded in one 30 s Whisper window.

Whisper's encoder always processes a 30 s window, so eight 3-second requests decoded one
window each pay for eight windows. Packed, their speech chunks lie end to end in shared
windows with a guard gap of silence between neighbours; one encoder pass and one ``generate``
serve them all, and the decoded words are split back by their aligned times.

The split is by construction, not by trust in Whisper's segment boundaries:

- every window is cut at the midpoint of each guard gap into regions, one per chunk;
- every decoded word belongs to exactly one region, the one holding its midpoint, so a word
  is never duplicated into two requests and never reaches a request whose region it is not in;
- a segment whose words fall in more than one region is cut there into one piece per region
  (a segment with no aligned words goes whole to the region of its midpoint);
- each piece's times are clamped into its own chunk's audio and shifted onto that chunk.

- a window is split only when that is unambiguous (``separable``): Whisper's own segment
  timestamps put a boundary in every gap, every aligned word lies in its segment's region and
  every chunk got text; otherwise (measured: a last word aligned past the gap midpoint, two
  identical clips decoded as one) its chunks are decoded again, one window each.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

WINDOW_SECONDS = 30.0


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


def pack(chunks: Sequence[tuple[Hashable, float]], *, gap_s: float | None,
         capacity_s: float = WINDOW_SECONDS) -> list[Window]:
    """Chunks ``(ref, seconds)`` placed into windows: first fit, longest first (fewest windows
    for the usual mix). ``gap_s=None`` turns packing off: one window per chunk, as unpacked."""
    windows: list[Window] = []
    if gap_s is None:
        for ref, duration in chunks:
            windows.append(Window(0.0))
            windows[-1].add(ref, duration)
        return windows
    for ref, duration in sorted(chunks, key=lambda chunk: -chunk[1]):
        window = next((w for w in windows if w.room_for(duration, capacity_s)), None)
        if window is None:
            window = Window(gap_s)
            windows.append(window)
        window.add(ref, duration)
    return windows


def separable(window: Window, spans: Sequence[tuple[float, float]], segments: Sequence[dict]) -> bool:
    """Whether a decoded window splits cleanly: Whisper put a segment boundary in every gap (each
    segment's own timestamp tokens, ``spans``, lie in one region), every aligned word agrees with
    its segment's region, and every chunk got text. Otherwise the window's chunks are decoded
    again, each alone: a word is never given to a request on a guess."""
    if len(window.placed) == 1:
        return True
    seen = set()
    for (start, end), segment in zip(spans, segments):
        owner = window.owner(start)
        if window.owner(max(start, end - 1e-6)) != owner:
            return False
        if any(window.owner((w["start"] + w["end"]) / 2) != owner for w in segment.get("words") or []):
            return False
        seen.add(owner)
    return len(seen) == len(window.placed)


def split(window: Window, segments: Sequence[dict], encode: Callable[[str], list[int]]) -> list[list[dict]]:
    """A window's decoded segments (window times; ``words`` from alignment, or absent) as each
    placed chunk's own segments, with times relative to the start of that chunk."""
    regions: list[list[dict]] = [[] for _ in window.placed]
    for segment in segments:
        words = segment.get("words") or []
        if not words:
            regions[window.owner((segment["start"] + segment["end"]) / 2)].append(dict(segment))
            continue
        runs = [(owner, list(run)) for owner, run in
                itertools.groupby(words, key=lambda w: window.owner((w["start"] + w["end"]) / 2))]
        for owner, run in runs:
            piece = dict(segment, words=run)
            if len(runs) > 1:  # a segment spanning a gap: each side keeps only its own words
                text = "".join(word["word"] for word in run)
                piece.update(text=text, tokens=encode(text), start=run[0]["start"], end=run[-1]["end"])
            regions[owner].append(piece)
    return [[_onto(place, piece) for piece in pieces] for place, pieces in zip(window.placed, regions)]


def _onto(place: Placed, piece: dict) -> dict:
    """Window times clamped into this chunk's audio and made relative to its start."""

    def local(seconds: float) -> float:
        return min(max(float(seconds), place.start), place.end) - place.start

    piece["start"], piece["end"] = local(piece["start"]), local(piece["end"])
    if piece.get("words"):
        piece["words"] = [dict(word, start=local(word["start"]), end=local(word["end"])) for word in piece["words"]]
    return piece
