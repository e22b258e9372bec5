"""The live hub: topics with per-topic sequence numbers, fanned out to WebSocket clients."""
