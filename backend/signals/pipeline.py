"""The training job the CLI and the benchmark run: history in, registered models out.

Transport-neutral: the CLI only shows progress and prints what these return.
"""

from __future__ import annotations

from pathlib import Path

from backend.signals import registry
from backend.signals.candles import BUNDLED, Candles, load_bundled
from backend.signals.train import Tracker, TrainConfig, Trained, train


def bundled_history(market: str, interval: str) -> Candles:
    """The shipped history of ``market`` at ``interval`` (``candles.BUNDLED``)."""
    for name, (m, i) in BUNDLED.items():
        if (m, i) == (market, interval):
            return load_bundled(name)
    shipped = ", ".join(f"{m} {i}" for m, i in BUNDLED.values())
    raise ValueError(f"no bundled history of {market} {interval}; shipped: {shipped}")


def train_and_save(
    candles: Candles,
    *,
    market: str,
    interval: str,
    root: Path = registry.DEFAULT_ROOT,
    config: TrainConfig | None = None,
    tracker: Tracker | None = None,
) -> tuple[Trained, list[registry.Entry]]:
    """Train the default models (walk-forward evaluation, then the final fit) and register
    both with their out-of-sample verdicts; the direction model also carries the patterns'
    hit rates, which the scorer shows beside each pattern."""
    settings = config or TrainConfig()
    trained = train(candles, settings, tracker=tracker)
    data = registry.DataInfo.of(candles, market=market, interval=interval)
    training = {
        **settings.to_dict(),
        "seed": settings.direction.seed,
        "evaluation_seconds": round(trained.evaluation.seconds, 1),
        "seconds": round(trained.seconds, 1),
        "folds": [
            {
                "train": [int(f.train[0]), int(f.train[-1]), len(f.train)],
                "test": [int(f.test[0]), int(f.test[-1]), len(f.test)],
            }
            for f in trained.evaluation.folds
        ],
    }
    ev = trained.evaluation
    direction = registry.save(
        root,
        trained.direction,
        data=data,
        evaluation={
            h: registry.Verdict(r.to_dict(), r.edge, r.reason, r.table())
            for h, r in ev.direction.items()
        },
        training=training,
        extra={
            "parameters": trained.direction.parameter_count(),
            "patterns": {
                str(h): {name: rec.to_dict() for name, rec in records.items()}
                for h, records in ev.patterns.items()
            },
        },
    )
    risk = registry.save(
        root,
        trained.volatility,
        data=data,
        evaluation={
            h: registry.Verdict(r.to_dict(), r.edge, r.reason, r.table())
            for h, r in ev.risk.items()
        },
        training=training,
    )
    return trained, [direction, risk]


def stored_tables(root: Path = registry.DEFAULT_ROOT) -> str:
    """The evaluation tables saved with the newest model of each kind."""
    parts = []
    for kind in registry.KINDS:
        found = registry.entry(root, kind)
        for h in found.metadata["horizons"]:
            table = found.verdict(int(h)).table
            parts.append(f"== {kind} v{found.version}, horizon {h} bar(s) ==\n{table}")
    return "\n\n".join(parts)
