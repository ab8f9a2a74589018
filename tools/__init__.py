"""Checks run from a repository checkout (not part of the installed package)."""
