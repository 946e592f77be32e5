"""companion: a self-hosted AI companion and virtual streamer."""

__version__ = "0.1.0"
