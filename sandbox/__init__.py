"""The Intercom sandbox: a local Data Events API and a webhook sender that behave as Intercom."""
