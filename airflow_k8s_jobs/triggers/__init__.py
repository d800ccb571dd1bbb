"""Triggers: what a deferred task waits on in the triggerer (see README.md here)."""
