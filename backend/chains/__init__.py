"""Chains: wallets linked to users (TON Connect ton_proof, Sign-In with Ethereum)."""
