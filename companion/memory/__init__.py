"""Long-term memory: what the companion knows about each person and about itself."""
