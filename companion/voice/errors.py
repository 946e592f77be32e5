"""One base for every voice problem a user can fix, so the CLI prints it as one line."""


class VoiceError(Exception):
    """Audio, device, model or server problem; the message says what was wrong and what to do."""
