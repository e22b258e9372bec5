"""The signal models, one per module, behind ``base.Predictor``."""
