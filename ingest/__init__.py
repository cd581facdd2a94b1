"""The webhook ingest: verifies Intercom's signature and makes each notification durable."""
