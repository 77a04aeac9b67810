"""Redaction of log text: configured secrets always, conversation text unless allowed.

It sits below `bot/`, so both the logging setup (`bot/logging.py`) and the
pipeline's `TranscriptLogGuard` can use it.
"""

import json
import re
from collections import deque
from collections.abc import Iterable

REDACTED = "[REDACTED]"
WITHHELD = "[withheld]"

_CREDENTIAL_PATTERNS = [
    # An Authorization header value, whatever its scheme, in headers, dicts or reprs.
    re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:\w+\s+)?[^\s\"',;}\]]+"),
    re.compile(r"(?i)(\b(?:x-)?api[-_]key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}\]]+"),
    # A bearer token anywhere else.
    re.compile(r"(?i)(\bbearer\s+)[^\s\"',;}\]]+"),
]

# Lines in which Pipecat (and we, at debug level) quote conversation text. The part
# that carries the text is replaced, the rest of the line stays useful.
_CONTENT_PATTERNS = [
    re.compile(r"(Generating TTS \[).*?(\])$", re.S),
    re.compile(r"(Generating LLM response).*$", re.S),
    re.compile(r"(Setting up LLM conversation).*$", re.S),
    re.compile(r"(TTS request: \S+ - ).*$", re.S),
    re.compile(r"(System instruction composed: ).*$", re.S),
    re.compile(r"(Using system instruction: ).*$", re.S),
    re.compile(r"(\btext: \[).*?(\])", re.S),
]

# Conversation text shorter than this is not tracked: it would redact common words.
_MIN_TRACKED_TEXT = 6


class Redactor:
    """Removes secrets and, unless allowed, conversation text from log lines."""

    def __init__(self, secrets: Iterable[str], *, log_transcripts: bool) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            if len(secret) >= 4:
                # The JSON-escaped form too, since whole lines are serialized first.
                self._secrets.extend({secret, json.dumps(secret)[1:-1]})
        # Longest first, so a secret that contains another is removed whole.
        self._secrets.sort(key=len, reverse=True)
        self._log_transcripts = log_transcripts
        self._conversation: deque[str] = deque(maxlen=512)
        self._by_length: list[str] = []

    def track_conversation_text(self, text: str) -> None:
        """Remember a user transcript or bot sentence so no later line can quote it."""
        text = text.strip()
        if self._log_transcripts or len(text) < _MIN_TRACKED_TEXT:
            return
        if text not in self._conversation:
            self._conversation.append(text)
            # Longest first, so an interim transcript can't leave the final one's tail.
            self._by_length = sorted(self._conversation, key=len, reverse=True)

    def withhold_content(self, text: str) -> str:
        """Replace conversation text in a message, unless transcripts may be logged."""
        if self._log_transcripts or not text:
            return text
        for pattern in _CONTENT_PATTERNS:
            text = pattern.sub(lambda m: _keep_frame(m), text)
        for spoken in self._by_length:
            if spoken in text:
                text = text.replace(spoken, WITHHELD)
        return text

    def remove_secrets(self, text: str) -> str:
        """Replace the configured secret values, raw or JSON-escaped."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def clean(self, text: str) -> str:
        """Everything a raw (not yet serialized) piece of a log line must lose."""
        text = self.withhold_content(text)
        for pattern in _CREDENTIAL_PATTERNS:
            text = pattern.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        return self.remove_secrets(text)


def _keep_frame(match: re.Match[str]) -> str:
    """Keep the pattern's fixed parts around the withheld text."""
    groups = [g for g in match.groups() if g is not None]
    opening = groups[0]
    closing = groups[1] if len(groups) > 1 else ""
    return f"{opening}{WITHHELD}{closing}"
