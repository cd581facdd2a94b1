"""hookstream: Intercom webhooks into Kafka, deduplicated and routed; data events back to
Intercom.

    hookstream.core       what every service shares: settings, the topic contract, logging,
                          errors, the Kafka client factory and topic admin
    hookstream.ingest     the webhook ingest (the top-level `ingest/` folder)
    hookstream.streams    the worker: dedup and fan-out (`streams/`)
    hookstream.sinks      data events to Intercom (`sinks/`)
    hookstream.sandbox    a local Intercom for dev, tests and benchmarks (`sandbox/`)
    hookstream.ops        operator commands: topics, tail, replay, send-webhook, ...
    hookstream.devtools   dev mode and the local Kafka launcher
    hookstream.cli        the `hookstream` command
"""
