"""StreamChat: answers wait while the companion speaks; it speaks up when chat is quiet, within limits."""

import asyncio

from companion.app import build_companion
from companion.stream.chat import ChatAnswering, SpeakUpPolicy, StreamChat
from companion.stream.message import ChatMessage
from companion.testing import eventually


def test_speak_up_policy():
    """Silence for `after` seconds triggers one remark; the hourly cap and quiet mode stop more."""
    now = [0.0]
    policy = SpeakUpPolicy(after=60, per_hour=2, clock=lambda: now[0])
    assert not policy.due()
    now[0] = 61
    assert policy.due()
    policy.spoke()
    now[0] = 130
    assert policy.due()
    policy.spoke()
    now[0] = 400
    assert not policy.due()  # two this hour already
    now[0] = 3800
    assert policy.due()
    assert not SpeakUpPolicy(after=1, per_hour=5, quiet=True, clock=lambda: 100.0).due()


async def test_answers_wait_for_speech_to_end_and_speaking_up_happens(settings_for, fake_openai):
    """While speaking, nothing is answered; afterwards the best message is; after a quiet spell it starts a topic."""
    settings = settings_for(fake_openai)
    settings.stream.speak_up_after = 0.3
    comp = build_companion(settings)
    await comp.start()
    chat = StreamChat(comp, settings)
    shown = []
    comp.bus.subscribe(ChatAnswering, shown.append)
    quiet = asyncio.Event()  # she is speaking until this is set
    waited = [0]

    async def until_quiet() -> None:
        waited[0] += 1
        await quiet.wait()

    stop = asyncio.Event()
    task = asyncio.create_task(chat.run(stop, quiet=until_quiet))
    chat.ingest(ChatMessage("twitch", "1", "Ann", "what are we playing today?"))
    # the positive signal first: the loop waits for quiet with the message queued
    await eventually(lambda: waited[0] >= 1 and len(chat.prioritiser) > 0, what="the chat waiting for quiet")
    assert waited[0] >= 1 and len(chat.prioritiser) == 1  # still queued: no answer was even started
    assert shown == [] and not chat.answers
    quiet.set()
    await eventually(lambda: len(chat.answers) >= 1 and any(e.text == "(speaking up)" for e in shown), what="the answer")
    stop.set()
    await task
    await comp.close()
    assert chat.answers[0][0].message.user_name == "Ann"
    assert shown[0].user_name == "Ann" and shown[0].text == "what are we playing today?"
    assert any(e.text == "(speaking up)" for e in shown)
