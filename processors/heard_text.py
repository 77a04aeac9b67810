"""Which words of the bot's speech the listener has heard, judged by the audio played.

Chatterbox gives no word timings: Pipecat then passes a sentence's text on once its
audio is written to the transport, while the transport may still hold up to a second
of it unplayed, and an interruption leaves that unheard text in the LLM context. Here
each sentence's words are spread over the audio written for it, in proportion to their
length, and each word is passed on once the audio up to its middle has been played.
Frames that follow a held word wait behind it, so the reply's end still comes after
its last word. Positions are bytes of audio along the bot's output.
"""

from collections import deque
from dataclasses import replace

from pipecat.frames.frames import Frame, TTSTextFrame


class HeardText:
    """Holds the bot's text until the audio it was spoken in has been played."""

    def __init__(self) -> None:
        """Start with nothing held."""
        # Each held frame with the position it waits for (None: only the frames ahead).
        self._held: deque[tuple[int | None, Frame]] = deque()
        self._text_start = 0

    @property
    def holding(self) -> bool:
        """Whether any frame is waiting."""
        return bool(self._held)

    def add_text(self, frame: TTSTextFrame, audio_end: int) -> None:
        """Hold a sentence's words, spoken in the audio written since the last sentence."""
        words = frame.text.split()
        start, self._text_start = self._text_start, max(self._text_start, audio_end)
        if not words:
            self._held.append((None, frame))
            return
        span = max(0, audio_end - start)
        total = sum(len(w) + 1 for w in words)
        before = 0
        for word in words:
            middle = before + (len(word) + 1) / 2
            before += len(word) + 1
            self._held.append((start + int(span * middle / total), _word_frame(frame, word)))

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
        self._text_start = audio_end
        return kept


def _word_frame(sentence: TTSTextFrame, word: str) -> TTSTextFrame:
    """One word of a sentence frame, with the sentence's context and flags."""
    frame = replace(sentence, text=word)
    for name in ("includes_inter_frame_spaces", "append_to_context", "will_be_spoken"):
        setattr(frame, name, getattr(sentence, name))
    frame.raw_text = None
    return frame
