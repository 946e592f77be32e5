"""Discord: text chat, slash commands, speaking (and, experimentally, listening) in voice channels."""
