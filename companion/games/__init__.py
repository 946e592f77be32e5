"""Co-playing games that speak the Neuro game API (VedalAI/neuro-sdk)."""
