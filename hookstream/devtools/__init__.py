"""Developer tooling: `hookstream dev` and the local Kafka launcher. Services never import
this package."""
