"""The streams worker: deduplicates notifications and fans them out per Intercom topic."""
