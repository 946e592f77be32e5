"""Speech to text providers behind :class:`~companion.voice.stt.base.STT`."""
