"""The notifier: delivers completion and failure events to webhooks."""
