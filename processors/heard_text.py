"""Which words of the bot's speech the listener has heard, judged by the audio played.

Chatterbox gives no word timings: Pipecat then passes a sentence's text on once its
audio is written to the transport, while the transport may still hold up to a second
of it unplayed, and an interruption leaves that unheard text in the LLM context. Here
each sentence's words are spread over the audio written for it, in proportion to their
length, and each word is passed on once its audio has begun to play (as Pipecat passes
on a word from a TTS with word timings at the word's start).
Frames that follow a held word wait behind it, so the reply's end still comes after
its last word. Positions are bytes of audio along the bot's output.

A sentence still being synthesized is already playing before its text frame comes (the
TTS sends that after the sentence's last audio). Its words are scheduled from the text
the TTS announces ahead of the audio, at the pace of the reply's sentences so far, and
rescheduled over the real audio once the sentence's text frame arrives.
"""

from collections import deque
from dataclasses import replace

from pipecat.frames.frames import AggregatedTextFrame, Frame, TTSTextFrame

# The pace assumed for a reply's first sentence, before any has been timed.
DEFAULT_CHARS_PER_S = 14


class HeardText:
    """Holds the bot's text until the audio it was spoken in has been played."""

    def __init__(self) -> None:
        """Start with nothing held."""
        # Each held frame with the position it waits for (None: only the frames ahead).
        self._held: deque[tuple[int | None, Frame]] = deque()
        self._text_start = 0
        # The announced sentence whose text frame has not come yet: its words as held.
        self._announced: list[TTSTextFrame] = []
        # Audio and characters of the sentences timed so far: the speaking pace.
        self._paced_bytes = 0
        self._paced_chars = 0

    @property
    def holding(self) -> bool:
        """Whether any frame is waiting."""
        return bool(self._held)

    def announce(self, frame: AggregatedTextFrame, bytes_per_second: int) -> None:
        """Hold the words of a sentence about to be spoken, at the pace heard so far."""
        words = frame.text.split()
        bytes_per_char = (
            self._paced_bytes / self._paced_chars
            if self._paced_chars
            else bytes_per_second / DEFAULT_CHARS_PER_S
        )
        sentence = TTSTextFrame(frame.text, text_type=frame.text_type, context_id=frame.context_id)
        # As the TTS's own text frame for it will be: spoken, part of this segment (a
        # word passed on before that frame comes must not read as new, unspoken text).
        sentence.will_be_spoken = True
        sentence.segment_id = frame.id
        self._announced = [_word_frame(sentence, w) for w in words]
        self._hold_words(self._announced, _starts(words, self._text_start, bytes_per_char))

    def add_text(self, frame: TTSTextFrame, audio_end: int) -> None:
        """Hold a sentence's words, spoken in the audio written since the last sentence."""
        words = frame.text.split()
        start, self._text_start = self._text_start, max(self._text_start, audio_end)
        announced, self._announced = self._announced, []
        skip = 0
        if len(announced) == len(words):
            # What was passed on as announced stays; the rest is timed on its real audio.
            waiting = {id(f) for f in announced} & {id(f) for _, f in self._held}
            self._held = deque((at, f) for at, f in self._held if id(f) not in waiting)
            skip = len(announced) - len(waiting)
        if not words:
            self._held.append((None, frame))
            return
        span = max(0, audio_end - start)
        chars = sum(len(w) + 1 for w in words)
        self._paced_bytes += span
        self._paced_chars += chars
        starts = _starts(words, start, span / chars)
        frames = [_word_frame(frame, w) for w in words]
        self._hold_words(frames[skip:], starts[skip:])

    def _hold_words(self, frames: list[TTSTextFrame], starts: list[int]) -> None:
        self._held.extend(zip(starts, frames, strict=True))

    def hold(self, frame: Frame) -> None:
        """Hold a frame behind the words ahead of it."""
        self._held.append((None, frame))

    def heard(self, position: int) -> list[Frame]:
        """The frames to pass on now that the audio up to `position` has been played."""
        out: list[Frame] = []
        while self._held and (self._held[0][0] is None or self._held[0][0] <= position):
            out.append(self._held.popleft()[1])
        return out

    def release_all(self) -> list[Frame]:
        """Everything held, as if heard (the conversation is ending)."""
        out = [frame for _, frame in self._held]
        self._held.clear()
        return out

    def interrupt(self, audio_end: int) -> list[Frame]:
        """Forget what was not heard; the frames an interruption must not drop remain."""
        kept = [f for _, f in self._held if not f.interruptible and not isinstance(f, TTSTextFrame)]
        self._held.clear()
        self._announced = []
        self._text_start = audio_end
        return kept


def _starts(words: list[str], start: int, bytes_per_char: float) -> list[int]:
    """Where each word's audio begins, the words taking time in proportion to length."""
    out, before = [], 0
    for word in words:
        out.append(start + int(before * bytes_per_char))
        before += len(word) + 1
    return out


def _word_frame(sentence: TTSTextFrame, word: str) -> TTSTextFrame:
    """One word of a sentence frame, with the sentence's context and flags."""
    frame = replace(sentence, text=word)
    for name in ("includes_inter_frame_spaces", "append_to_context", "will_be_spoken"):
        setattr(frame, name, getattr(sentence, name))
    frame.raw_text = None
    return frame
