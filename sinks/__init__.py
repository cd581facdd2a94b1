"""The sink: data events from Kafka to Intercom's Data Events API."""
