"""What the participant says: WAV prompts and pluggable text-to-speech, played on a worker thread.

Audio leaves as 16-bit little-endian PCM at one fixed format per participant
(``PcmFormat``: 16 kHz mono unless configured). A WAV prompt is accepted when it is
uncompressed PCM, 16 bits per sample, mono or stereo, at that sample rate; its channels are
converted (stereo is averaged to mono, mono is doubled to stereo). Nothing is resampled: a
file at another rate is refused before it plays, with the reason, so the call goes on and the
operator converts the file (``sox in.wav -r 16000 -c 1 -b 16 out.wav``).

``Player`` owns one worker thread per participant. Prompts queue in order; each is written to
the ``AudioOutput`` in chunks of ``chunk_ms``. daily-python's ``write_frames`` blocks until
its frames are sent, which paces playback; an output that does not block is paced here, never
more than ``lead_ms`` ahead of real time, and the end of a prompt is reported when its last
chunk is due to have been heard. ``stop()`` (barge-in) abandons the prompt that is playing and
every queued one within one chunk; abandoned prompts report nothing.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import wave
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from flowengine.daily.errors import DailyError
from flowengine.daily.participant_client import AudioOutput

log = structlog.get_logger(__name__)

SAMPLE_WIDTH = 2
"""Bytes per sample: only 16-bit PCM is played."""


class AudioFormatError(DailyError):
    """Raised when a prompt's audio file cannot be played as it is (format, rate, missing)."""


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """The participant's output format: 16-bit PCM at ``sample_rate`` with ``channels``."""

    sample_rate: int = 16_000
    channels: int = 1

    def __post_init__(self) -> None:
        if self.channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, not {self.channels}")
        if not 8_000 <= self.sample_rate <= 48_000:
            raise ValueError(f"sample_rate must be 8000..48000 Hz, not {self.sample_rate}")

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample per channel)."""
        return SAMPLE_WIDTH * self.channels

    @property
    def bytes_per_second(self) -> int:
        """Bytes of one second of audio."""
        return self.frame_bytes * self.sample_rate

    def chunk_bytes(self, ms: int) -> int:
        """Bytes of ``ms`` milliseconds, a whole number of frames (at least one)."""
        return max(1, self.sample_rate * ms // 1000) * self.frame_bytes


class TextToSpeech(Protocol):
    """Speaks text as PCM: plug one in to make ``say`` and text-only prompts audible.

    Called on the player's worker thread, so it may block (a network TTS service is fine).
    """

    def synthesize(
        self, text: str, *, voice: str | None, locale: str | None, fmt: PcmFormat
    ) -> Iterable[bytes]:
        """16-bit little-endian PCM in ``fmt``, in chunks of any size."""
        ...


def _native(samples: array[int]) -> array[int]:
    if sys.byteorder == "big":
        samples.byteswap()  # WAV data and daily-python's frames are little-endian
    return samples


def convert_channels(data: bytes, source: int, target: int) -> bytes:
    """16-bit little-endian PCM frames from ``source`` to ``target`` channels (1 or 2)."""
    if source == target:
        return data
    samples = _native(array("h", data))
    if source == 2 and target == 1:
        # The mean of both sides, so a voice panned to one side is not lost.
        out = array("h", [(a + b) >> 1 for a, b in zip(samples[0::2], samples[1::2], strict=False)])
    elif source == 1 and target == 2:
        out = array("h", bytes(len(samples) * 2 * SAMPLE_WIDTH))
        out[0::2] = samples
        out[1::2] = samples
    else:
        raise ValueError(f"cannot convert {source} channels to {target}")
    return _native(out).tobytes()


def check_wav(path: Path, fmt: PcmFormat) -> int:
    """Check that ``path`` is a WAV file ``fmt`` can play; its channel count.

    Raises:
        AudioFormatError: the file is missing, not a PCM WAV, not 16-bit, has more than two
            channels, or another sample rate.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
    except FileNotFoundError as exc:
        raise AudioFormatError(f"{path}: no such audio file") from exc
    except (wave.Error, EOFError, OSError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width != SAMPLE_WIDTH:
        raise AudioFormatError(f"{path}: {8 * width}-bit samples; only 16-bit PCM is played")
    if channels not in (1, 2):
        raise AudioFormatError(f"{path}: {channels} channels; only mono or stereo is played")
    if rate != fmt.sample_rate:
        raise AudioFormatError(
            f"{path}: {rate} Hz; the participant plays {fmt.sample_rate} Hz (convert the file, "
            "or configure the participant's sample rate)"
        )
    return channels


def wav_chunks(path: Path, fmt: PcmFormat, chunk_ms: int = 100) -> Iterator[bytes]:
    """The PCM of a WAV file (checked with ``check_wav``) in ``fmt``, read a chunk at a time."""
    channels = check_wav(path, fmt)
    frames = max(1, fmt.sample_rate * chunk_ms // 1000)
    with wave.open(str(path), "rb") as wav:
        while data := wav.readframes(frames):
            yield convert_channels(data, channels, fmt.channels)


Source = Callable[[], Iterable[bytes]]
"""Opens a prompt's audio (on the worker thread) as PCM chunks in the player's format."""


@dataclass(slots=True)
class _Job:
    key: str
    source: Source
    generation: int


class Player:
    """Plays prompts in order on a worker thread; ``stop`` abandons them (barge-in).

    Args:
        output: where frames are written.
        fmt: the PCM format of every source.
        on_done: called (on the worker thread) with a prompt's key when it has played.
        on_failed: called (on the worker thread) with the key and the reason a prompt failed.
        chunk_ms: the size of each write; also how soon ``stop`` takes effect.
        lead_ms: how far ahead of real time an output that does not block may be fed.
    """

    def __init__(
        self,
        output: AudioOutput,
        fmt: PcmFormat,
        *,
        on_done: Callable[[str], None],
        on_failed: Callable[[str, str], None],
        chunk_ms: int = 20,
        lead_ms: int = 200,
        name: str = "flowengine-player",
    ) -> None:
        self.output, self.fmt = output, fmt
        self._on_done, self._on_failed = on_done, on_failed
        self._chunk = fmt.chunk_bytes(chunk_ms)
        self._lead = lead_ms / 1000
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._generation = 0
        self._interrupt = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.current: str | None = None
        """The key of the prompt being played (read from any thread, for information)."""

    def play(self, key: str, source: Source) -> None:
        """Queue a prompt; it plays after those already queued."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the player is closed")
            self._jobs.put(_Job(key, source, self._generation))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Abandon the prompt that is playing and every queued one."""
        with self._lock:
            self._generation += 1
            self._interrupt.set()

    def close(self, timeout: float = 2.0) -> None:
        """Stop playing and end the worker thread (waits up to ``timeout`` seconds)."""
        with self._lock:
            self._closed = True
            self._generation += 1
            self._interrupt.set()
            self._jobs.put(None)
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _stale(self, job: _Job) -> bool:
        return job.generation != self._generation

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._stale(job):
                continue
            self._interrupt.clear()
            self.current = job.key
            try:
                finished = self._play(job)
            except Exception as exc:  # a bad file or a failing TTS must not end the thread
                log.warning("participant.play_failed", key=job.key, error=str(exc))
                self._on_failed(job.key, f"{type(exc).__name__}: {exc}")
            else:
                if finished:
                    self._on_done(job.key)
            finally:
                self.current = None

    def _play(self, job: _Job) -> bool:
        """Write one prompt; False when it was stopped."""
        start, sent, size = time.monotonic(), 0.0, self._chunk
        buffer = bytearray()
        for piece in job.source():
            buffer += piece
            whole = len(buffer) - len(buffer) % size
            for offset in range(0, whole, size):
                if not self._write(job, bytes(buffer[offset : offset + size]), start, sent):
                    return False
                sent += size / self.fmt.bytes_per_second
            del buffer[:whole]
            if self._stale(job):
                return False
        tail = len(buffer) - len(buffer) % self.fmt.frame_bytes
        if tail:
            if not self._write(job, bytes(buffer[:tail]), start, sent):
                return False
            sent += tail / self.fmt.bytes_per_second
        # Report the end when the last chunk should have been heard, not when it was queued.
        remaining = sent - (time.monotonic() - start)
        if remaining > 0:
            self._interrupt.wait(remaining)
        return not self._stale(job)

    def _write(self, job: _Job, chunk: bytes, start: float, sent: float) -> bool:
        if self._stale(job):
            return False
        self.output.write_frames(chunk)
        ahead = sent + len(chunk) / self.fmt.bytes_per_second - (time.monotonic() - start)
        if ahead > self._lead:
            self._interrupt.wait(ahead - self._lead)
        return not self._stale(job)
