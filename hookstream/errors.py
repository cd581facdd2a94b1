"""Errors of hookstream's shared layer.

HookstreamError
 └── LocalKafkaError      the local broker could not be fetched, formatted, started or stopped
"""


class HookstreamError(Exception):
    """Root of the errors raised by the shared `hookstream` package."""


class LocalKafkaError(HookstreamError):
    """The local Kafka broker could not be fetched, formatted, started or stopped."""
