"""Sandbox authorities: real HTTP services standing in for customs (and later inspection and
the port), with their own signing keys and asynchronous signed receipts."""
