"""Placeholder: the broker fixtures are written by another engineer (tests/conftest.py loads this plugin)."""
