"""Voice: hear a person (VAD, STT), speak (TTS), and let them interrupt (barge-in).

Everything here is optional (`pip install 'companion[voice]'`); heavy libraries
are imported only when a provider is built, so text-only installs never load them.
"""
