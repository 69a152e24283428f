"""The control worker: applies what agents report to the registry."""
