"""Vocoders and the shared log-mel definition."""
