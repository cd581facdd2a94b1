"""What every hookstream service shares: settings, the topic contract, logging, traces, errors,
the Kafka client factory and the topic admin. Imports nothing of hookstream's outside itself."""
