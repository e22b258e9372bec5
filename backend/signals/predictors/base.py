"""The one small interface every signal model implements: fit, predict, save, load.

A model maps candles to one number per horizon (a probability of "up", a volatility).  It is
fitted on the sample bars of a training fold, predicts in one pass over a stacked batch (many
bars of one market for an evaluation, the last bar of many markets for serving), and is stored
as tensors (``safetensors``: plain numbers, nothing executable) beside a ``Spec`` of plain JSON
data that says how to rebuild it.  The registry adds the hashes and the verdicts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import load_file, save_file

from backend.signals.candles import Candles
from backend.signals.walkforward import FloatArray, IntArray

Progress = Callable[[str], None]
"""Told a short line of what is happening (an epoch's loss); the CLI shows it, tests ignore it."""
Inputs = NDArray[Any]
"""A model's inputs for a stack of rows (bars or markets), first axis the rows."""


@dataclass(frozen=True, slots=True)
class Spec:
    """What rebuilding a model needs besides its tensors, as JSON-ready data."""

    horizons: tuple[int, ...]  # in bars, one output column each
    features: tuple[str, ...]  # the input names the code computed when it was trained
    window: int  # how many bars of history one input row spans
    config: dict[str, Any] = field(default_factory=dict)  # hyper-parameters and the seed
    scaler: dict[str, list[float]] | None = None  # normalisation fitted on the training fold


class Predictor(ABC):
    """A signal model; ``predict`` returns (rows, len(horizons))."""

    kind: ClassVar[str]
    features: ClassVar[tuple[str, ...]]
    window: ClassVar[int]
    warmup: ClassVar[int]
    """The first bar of a series that has inputs: earlier bars lack the history."""
    history: ClassVar[int]
    """How many candles ending at a bar determine its inputs (serving needs this many)."""

    horizons: tuple[int, ...]

    @abstractmethod
    def fit(self, candles: Candles, train: IntArray, *, progress: Progress | None = None) -> None:
        """Fit on the sample bars ``train`` (a fold's training indices; those before ``warmup``
        are skipped), whose labels, ``max(horizons)`` bars on, must lie inside ``candles``."""

    @abstractmethod
    def inputs(self, candles: Candles, at: IntArray) -> Inputs:
        """The inputs of bars ``at``, each from candles up to and including it."""

    @abstractmethod
    def last_inputs(self, candles: Candles) -> Inputs:
        """The inputs of the last candle, one row, from its last ``history`` candles."""

    @abstractmethod
    def predict(self, inputs: Inputs) -> FloatArray:
        """(rows, len(horizons)) for a stack of inputs, in one forward pass."""

    @abstractmethod
    def spec(self) -> Spec: ...

    @abstractmethod
    def tensors(self) -> dict[str, torch.Tensor]: ...

    @classmethod
    @abstractmethod
    def rebuild(cls, spec: Spec, tensors: dict[str, torch.Tensor]) -> Self:
        """The model again; ``ValueError`` when the tensors do not fit the spec."""

    def predict_at(self, candles: Candles, at: IntArray, *, chunk: int = 4096) -> FloatArray:
        """Predictions for bars ``at`` of one series, a chunk at a time to bound memory."""
        index = np.asarray(at, dtype=np.int64)
        parts = [
            self.predict(self.inputs(candles, index[start : start + chunk]))
            for start in range(0, len(index), chunk)
        ]
        if not parts:
            return np.empty((0, len(self.horizons)))
        return np.concatenate(parts)

    def predict_last(self, batch: Sequence[Candles]) -> FloatArray:
        """The last candle of each series, all in one forward pass."""
        if not batch:
            return np.empty((0, len(self.horizons)))
        return self.predict(np.stack([self.last_inputs(candles) for candles in batch]))

    def save(self, path: Path) -> None:
        """The tensors alone, as safetensors (the registry writes the spec beside them)."""
        save_file({k: v.detach().contiguous() for k, v in self.tensors().items()}, str(path))

    @classmethod
    def load(cls, path: Path, spec: Spec) -> Self:
        return cls.rebuild(spec, load_file(str(path)))


@contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded, deterministic torch on at most ``threads`` threads, restored afterwards.

    The random state is forked, so training leaves the caller's torch generator untouched."""
    threads_before = torch.get_num_threads()
    strict_before = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(strict_before)
            torch.set_num_threads(threads_before)


def labels(close: FloatArray, at: IntArray, horizons: Sequence[int]) -> NDArray[np.float32]:
    """(len(at), len(horizons)): 1 where the close ``h`` bars after each bar is higher."""
    prices = np.asarray(close, dtype=np.float64)
    index = np.asarray(at, dtype=np.int64)
    if len(index) and index.max() + max(horizons) >= len(prices):
        raise ValueError("a label lies beyond the last candle")
    return np.stack([prices[index + h] > prices[index] for h in horizons], axis=1).astype(
        np.float32
    )


def usable(train: IntArray, warmup: int) -> IntArray:
    """The training bars that have inputs, ascending."""
    index = np.sort(np.asarray(train, dtype=np.int64))
    result: IntArray = index[index >= warmup]
    if not len(result):
        raise ValueError(f"no training bar at or after the warm-up bar {warmup}")
    return result
