"""The capture agent: one per VM (worker.py), its capture runs, reports and recovery."""
