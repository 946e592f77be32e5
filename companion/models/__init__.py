"""Model files: the curated catalog, downloads from the Hugging Face hub, and what is already on this machine."""
