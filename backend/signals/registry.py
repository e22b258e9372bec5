"""The model registry: every trained version as safetensors weights beside JSON metadata.

Layout: ``<root>/<kind>/v0001/{weights.safetensors, metadata.json}``, a new numbered folder per
version, written whole under a temporary name and renamed into place, so a reader never sees
half a version.  Weights are plain tensors (never pickle: loading a model must not run code);
the metadata says what the model was trained on and how it scored, and carries the weights'
sha256.  ``load`` refuses a version whose weights do not hash to it, or whose feature list is
not the one the code computes today: such a model would read the wrong numbers as its inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.errors import DomainError
from backend.signals.candles import FIELDS, Candles
from backend.signals.predictors.base import Predictor, Spec
from backend.signals.predictors.direction import DirectionModel
from backend.signals.predictors.volatility import VolatilityModel

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "var" / "signals" / "models"
"""``var/signals/models`` in the repository; every function takes another root."""
KINDS: dict[str, type[Predictor]] = {
    DirectionModel.kind: DirectionModel,
    VolatilityModel.kind: VolatilityModel,
}
# Bumped when the metadata's shape changes; load refuses versions it does not know.
FORMAT = 1
WEIGHTS = "weights.safetensors"
METADATA = "metadata.json"


class ModelRefused(DomainError):
    """A stored model that must not be used: missing, tampered with, or built for other inputs."""

    code = "model_refused"


@dataclass(frozen=True, slots=True)
class DataInfo:
    """The history a model was trained on, identified by its content's hash."""

    market: str
    interval: str
    first_time: int
    last_time: int
    bars: int
    sha256: str

    @classmethod
    def of(cls, candles: Candles, *, market: str, interval: str) -> DataInfo:
        return cls(
            market=market,
            interval=interval,
            first_time=int(candles.time[0]),
            last_time=int(candles.time[-1]),
            bars=len(candles),
            sha256=candles_sha256(candles),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """One horizon's out-of-sample record: the report's data, its verdict and its table."""

    metrics: dict[str, object]
    edge: bool
    reason: str
    table: str


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    kind: str
    version: int
    path: Path
    metadata: dict[str, Any]

    def verdict(self, horizon: int) -> Verdict:
        data = self.metadata["evaluation"][str(horizon)]
        return Verdict(data["metrics"], bool(data["edge"]), str(data["reason"]), data["table"])


def candles_sha256(candles: Candles) -> str:
    """The hash of the candles' values (times, then each column, little-endian)."""
    digest = hashlib.sha256()
    digest.update(candles.time.astype("<i8").tobytes())
    for name in FIELDS:
        digest.update(getattr(candles, name).astype("<f8").tobytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions(root: Path, kind: str) -> list[int]:
    folder = Path(root) / kind
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        name = child.name
        if child.is_dir() and name.startswith("v") and name[1:].isdigit():
            found.append(int(name[1:]))
    return sorted(found)


def save(
    root: Path,
    model: Predictor,
    *,
    data: DataInfo,
    evaluation: dict[int, Verdict],
    training: dict[str, object],
    extra: dict[str, object] | None = None,
) -> Entry:
    """Store ``model`` as the next version of its kind; returns where it went."""
    folder = Path(root) / model.kind
    folder.mkdir(parents=True, exist_ok=True)
    spec = model.spec()
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        model.save(staging / WEIGHTS)
        # mkdtemp makes the folder private; a model is no secret, and the server may run as
        # another user than the trainer.
        staging.chmod(0o755)
        (staging / WEIGHTS).chmod(0o644)
        metadata: dict[str, Any] = {
            "format": FORMAT,
            "kind": model.kind,
            "version": 0,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "horizons": list(spec.horizons),
            "features": list(spec.features),
            "window": spec.window,
            "scaler": spec.scaler,
            "model": spec.config,
            "data": {
                "market": data.market,
                "interval": data.interval,
                "first_time": data.first_time,
                "last_time": data.last_time,
                "bars": data.bars,
                "sha256": data.sha256,
            },
            "training": training,
            "evaluation": {
                str(h): {
                    "edge": v.edge,
                    "reason": v.reason,
                    "metrics": v.metrics,
                    "table": v.table,
                }
                for h, v in sorted(evaluation.items())
            },
            "extra": extra or {},
            "weights": {"file": WEIGHTS, "sha256": file_sha256(staging / WEIGHTS)},
        }
        while True:
            version = max(versions(root, model.kind), default=0) + 1
            metadata["version"] = version
            # Compact: the reports' equity curves hold a number per test point (~2 MB).
            text = json.dumps(metadata, separators=(",", ":"), allow_nan=False)
            (staging / METADATA).write_text(text)
            (staging / METADATA).chmod(0o644)
            target = folder / f"v{version:04d}"
            try:
                os.rename(staging, target)  # atomic; fails if another writer took the number
            except OSError:
                if target.exists():
                    continue
                raise
            return Entry(model.kind, version, target, metadata)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def entry(root: Path, kind: str, version: int | None = None) -> Entry:
    """The metadata of a version (by default the newest), checked for format and kind only."""
    if kind not in KINDS:
        raise ModelRefused(f"no model kind {kind!r}; there are {', '.join(KINDS)}")
    if version is None:
        known = versions(root, kind)
        if not known:
            raise ModelRefused(f"no {kind} model in {root}: run `simplrefq signals train`")
        version = known[-1]
    path = Path(root) / kind / f"v{version:04d}"
    try:
        metadata = json.loads((path / METADATA).read_text())
    except (OSError, ValueError) as exc:
        raise ModelRefused(f"{kind} v{version}: unreadable metadata ({exc})") from exc
    if metadata.get("format") != FORMAT or metadata.get("kind") != kind:
        raise ModelRefused(f"{kind} v{version}: metadata of another format or kind")
    return Entry(kind, version, path, metadata)


def load(root: Path, kind: str, version: int | None = None) -> tuple[Predictor, Entry]:
    """The model and its entry; ``ModelRefused`` unless the weights and features check out."""
    found = entry(root, kind, version)
    metadata, name = found.metadata, f"{kind} v{found.version}"
    cls = KINDS[kind]
    if list(metadata.get("features", [])) != list(cls.features):
        raise ModelRefused(
            f"{name} was trained on other features than the code computes: retrain it"
        )
    weights = found.path / WEIGHTS
    try:
        actual = file_sha256(weights)
    except OSError as exc:
        raise ModelRefused(f"{name}: unreadable weights ({exc})") from exc
    if actual != metadata.get("weights", {}).get("sha256"):
        raise ModelRefused(f"{name}: the weights file does not match its recorded sha256")
    spec = Spec(
        horizons=tuple(int(h) for h in metadata["horizons"]),
        features=tuple(metadata["features"]),
        window=int(metadata["window"]),
        config=dict(metadata["model"]),
        scaler=metadata.get("scaler"),
    )
    try:
        model = cls.load(weights, spec)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelRefused(f"{name}: the weights do not fit the metadata ({exc})") from exc
    return model, found
