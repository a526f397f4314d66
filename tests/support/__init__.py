"""Test support: real servers started and stopped by fixtures, sample loaders."""
