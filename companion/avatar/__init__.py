"""The avatar: a VTube Studio model driven through its public API (lip sync, expressions, states)."""
