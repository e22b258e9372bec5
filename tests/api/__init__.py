"""The app served on loopback by a real server, driven over HTTP and WebSocket."""
