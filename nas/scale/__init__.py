"""Compound scaling of a found network and its family."""
