"""Trading: SimplRefQ's own order books, and the service that journals and settles them."""
