"""Helpers for the sandbox tests (a running sandbox and a stand-in gateway)."""
