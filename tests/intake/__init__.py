"""Fake Datadog intake for end-to-end tests: see README.md beside this file."""
