"""Operator commands: topics, tail, replay (with its ledger), send-webhook, verify-signature.
Services never import this package."""
