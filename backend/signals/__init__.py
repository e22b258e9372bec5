"""AI signals: market analysis, pattern recognition and risk assessment, with an honest record."""
