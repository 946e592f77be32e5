"""Voice: hear a person (VAD, STT), speak (TTS), and let them interrupt (barge-in).

Everything here is optional (`pip install 'companion[voice]'`); heavy libraries
are imported only when a provider is built, so text-only installs never load them.
"""

from companion.core.platforms import declare_platform

# A spoken conversation: replies are heard (short, and history keeps what was heard), only by whoever spoke.
declare_platform("voice", heard=True)
