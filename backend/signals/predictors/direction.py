"""Market analysis: the probability that the close ``h`` bars on is higher, for each horizon.

A small dilated 1D CNN over the feature window (``features.FEATURES`` x ``WINDOW``) with one
output per horizon, trained with binary cross-entropy on all of them at once: the horizons share
what they learn about the window, and one network per fold trains in half the time of two.
Early stopping watches a validation tail of the training fold, purged so that no label of the
fitted part reaches into it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from backend.signals import features as F
from backend.signals.candles import Candles
from backend.signals.predictors.base import (
    Inputs,
    Predictor,
    Progress,
    Spec,
    deterministic,
    labels,
    usable,
)
from backend.signals.walkforward import FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class DirectionConfig:
    """Hyper-parameters; every one is stored with the model."""

    # 32 filters: enough to mix the 67 input channels into a few dozen motifs; about 13k
    # weights in all, small beside ~15k noisy training windows per fold.
    width: int = 32
    dropout: float = 0.1
    # Early stopping usually ends training at 2-5 epochs on hourly BTC; 8 caps a fold's time.
    epochs: int = 8
    patience: int = 2  # epochs without a better validation loss before stopping
    batch: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    validation: float = 0.15  # the newest share of the training fold, held out for stopping
    seed: int = 7
    threads: int = 2  # the CPU budget of a training run (torch.set_num_threads)


class DirectionNet(nn.Module):
    """(batch, WINDOW, channels) -> one logit per horizon.

    Three 3-tap convolutions dilated 1, 2, 4 see the last 15 bars at the final step; the mean
    over the window adds the whole window's context.  A linear skip from the last bar's inputs
    straight to the logits makes the simplest signals (the last hour's reversal) a single
    weight away: without it the network learned them less well than a calibrated baseline."""

    def __init__(self, channels: int, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, width, 3, padding=1),
            nn.GELU(),
            nn.Conv1d(width, width, 3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv1d(width, width, 3, padding=4, dilation=4),
            nn.GELU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * width, heads)
        self.skip = nn.Linear(channels, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x.transpose(1, 2))
        pooled = torch.cat([h.mean(dim=2), h[:, :, -1]], dim=1)
        logits: torch.Tensor = self.head(self.dropout(pooled)) + self.skip(x[:, -1, :])
        return logits


class DirectionModel(Predictor):
    kind = "direction"
    features = F.FEATURES
    window = F.WINDOW
    warmup = F.WARMUP
    history = F.TAIL

    def __init__(
        self,
        horizons: tuple[int, ...] = (1, 4),
        config: DirectionConfig | None = None,
    ) -> None:
        if not horizons or min(horizons) < 1:
            raise ValueError("horizons are positive numbers of bars")
        self.horizons = tuple(horizons)
        self.config = config or DirectionConfig()
        self.scaler: F.Scaler | None = None
        self.net: DirectionNet | None = None
        self.epochs_run = 0

    def _new_net(self) -> DirectionNet:
        c = self.config
        return DirectionNet(len(F.FEATURES), c.width, len(self.horizons), c.dropout)

    def fit(self, candles: Candles, train: IntArray, *, progress: Progress | None = None) -> None:
        c = self.config
        index = usable(train, self.warmup)
        y = labels(candles.close, index, self.horizons)
        held = max(1, math.ceil(len(index) * c.validation))
        validation = index[-held:]
        # Purge: a fitted label must be known before the validation tail begins.
        fitted = np.flatnonzero(index[:-held] + max(self.horizons) <= validation[0])
        if not len(fitted):
            raise ValueError("the training fold is too short to hold out a validation tail")
        bars = F.bar_features(candles)
        scaler = F.Scaler.fit(bars, index)
        x_val = torch.from_numpy(scaler.apply(bars.windows(validation)))
        y_val = torch.from_numpy(y[-held:])
        y_fit = torch.from_numpy(y)
        loss_fn = nn.BCEWithLogitsLoss()
        with deterministic(c.seed, c.threads):
            net = self._new_net()
            optimiser = torch.optim.AdamW(
                net.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay
            )
            order = torch.Generator().manual_seed(c.seed)
            best, best_state, waited, epoch = math.inf, copy.deepcopy(net.state_dict()), 0, 0
            for epoch in range(1, c.epochs + 1):
                net.train()
                for batch in torch.split(torch.randperm(len(fitted), generator=order), c.batch):
                    rows = fitted[batch.numpy()]
                    x = torch.from_numpy(scaler.apply(bars.windows(index[rows])))
                    optimiser.zero_grad()
                    loss = loss_fn(net(x), y_fit[rows])
                    loss.backward()
                    optimiser.step()
                net.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(net(x_val), y_val))
                if progress is not None:
                    progress(f"epoch {epoch}: validation BCE {val_loss:.4f}")
                if val_loss < best - 1e-5:
                    best, best_state, waited = val_loss, copy.deepcopy(net.state_dict()), 0
                else:
                    waited += 1
                    if waited >= c.patience:
                        break
            net.load_state_dict(best_state)
            net.eval()
        self.net, self.scaler, self.epochs_run = net, scaler, epoch

    def inputs(self, candles: Candles, at: IntArray) -> Inputs:
        return self._scaler().apply(F.windows(candles, at))

    def last_inputs(self, candles: Candles) -> Inputs:
        return self.scale(F.last_window(candles))

    def scale(self, windows: F.Window) -> Inputs:
        """Raw windows (``features.windows``, ``features.last_window``) as the net's inputs."""
        return self._scaler().apply(windows)

    def predict(self, inputs: Inputs) -> FloatArray:
        net = self._net()
        with torch.inference_mode():
            logits = net(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)))
            probabilities: FloatArray = torch.sigmoid(logits.double()).numpy()
        return probabilities

    def spec(self) -> Spec:
        scaler = self._scaler()
        return Spec(
            horizons=self.horizons,
            features=self.features,
            window=self.window,
            config={**asdict(self.config), "epochs_run": self.epochs_run},
            scaler={"mean": scaler.mean.tolist(), "std": scaler.std.tolist()},
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        scaler = self._scaler()
        weights = {f"net.{k}": v.detach().clone() for k, v in self._net().state_dict().items()}
        weights["scaler.mean"] = torch.from_numpy(scaler.mean.copy())
        weights["scaler.std"] = torch.from_numpy(scaler.std.copy())
        return weights

    @classmethod
    def rebuild(cls, spec: Spec, tensors: dict[str, torch.Tensor]) -> Self:
        settings: dict[str, Any] = dict(spec.config)
        epochs_run = int(settings.pop("epochs_run", 0))
        model = cls(tuple(spec.horizons), DirectionConfig(**settings))
        mean = tensors["scaler.mean"].double().numpy()
        std = tensors["scaler.std"].double().numpy()
        if spec.scaler is None or not (
            np.array_equal(mean, spec.scaler["mean"]) and np.array_equal(std, spec.scaler["std"])
        ):
            raise ValueError("the scaler in the metadata differs from the one in the weights")
        net = model._new_net()
        state = {k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"the weights do not fit the network: {exc}") from exc
        net.eval()
        model.net, model.scaler, model.epochs_run = net, F.Scaler(mean, std), epochs_run
        return model

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self._net().parameters())

    def _net(self) -> DirectionNet:
        if self.net is None:
            raise ValueError("the model is not fitted")
        return self.net

    def _scaler(self) -> F.Scaler:
        if self.scaler is None:
            raise ValueError("the model is not fitted")
        return self.scaler
