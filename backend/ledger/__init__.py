"""The ledger: every balance the product has, as immutable double-entry transfers."""
