"""Prompt building rules that are pure logic."""

from companion.core.prompt import history_window


def test_history_window_start_moves_in_steps():
    """The prompt's history starts at the same message for several turns, so prompt caches keep working."""
    assert [history_window(n, 20) for n in (0, 5, 20)] == [0, 5, 20]
    starts = [n - history_window(n, 20) for n in range(21, 60)]
    assert all(10 <= history_window(n, 20) <= 20 for n in range(21, 60))
    assert len(set(starts)) <= 4  # 39 turns, the start moved only every 10 messages
    assert history_window(50, 0) == 0


def test_history_fits_its_token_budget_and_its_start_moves_in_steps():
    """Long histories are cut from the oldest side at fixed positions, so the newest stay and the start rarely moves."""
    from companion.core.prompt import HistoryItem, estimate_tokens, fit_history

    conversation = [HistoryItem("user" if i % 2 == 0 else "assistant", f"message {i} " + "word " * 20) for i in range(60)]
    starts = []
    for total in range(20, 61, 2):  # one turn after another
        window = conversation[total - 20 : total]
        kept = fit_history(window, 300, first_index=total - 20, step=4)
        assert kept and kept[-1] is window[-1]
        assert sum(estimate_tokens(i.content) + 4 for i in kept) <= 300
        starts.append(total - len(kept))
    assert all(s % 4 == 0 for s in starts)  # only ever cut at a multiple of the step
    assert len(set(starts)) <= len(starts) // 2 + 1  # the start stays put for at least two turns at a time
    assert fit_history(conversation, 0) == conversation
    huge = [HistoryItem("user", "word " * 400), HistoryItem("assistant", "ok then")]
    assert fit_history(huge, 100, first_index=3, step=10) == huge[-1:]  # never more than the budget allows


def test_example_dialogue_becomes_user_and_assistant_turns():
    """A card's <START> blocks are real message pairs after the system prompt, {{user}} as the speaker's name."""
    from companion.character.persona import Character
    from companion.core.prompt import NewMessage, build_messages

    card = Character(
        name="Mika",
        description="A cheerful streamer.",
        mes_example="<START>\n{{user}}: Hi {{char}}!\n{{char}}: Hey {{user}}! Ready to play?\n"
        "<START>\n{{user}}: What do you like?\n{{char}}: Cozy games,\nand tea.",
    )
    messages = build_messages(card, [], NewMessage("Hello!", "Robin"), conversation_start=False)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[1]["content"] == "Hi Mika!" and messages[2]["content"] == "Hey Robin! Ready to play?"
    assert messages[4]["content"] == "Cozy games,\nand tea."
    assert "{{" not in messages[0]["content"] and "Hi Mika" not in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "Hello!"}


def test_examples_in_prose_stay_in_the_system_prompt():
    """Examples that are not {{user}}:/{{char}}: lines are described in the system prompt, as before."""
    from companion.character.persona import Character
    from companion.core.prompt import NewMessage, build_messages

    card = Character(name="Mika", mes_example="Mika often says 'nyan' and loves puns.")
    messages = build_messages(card, [], NewMessage("Hello!", "Robin"), conversation_start=False)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "Example of how Mika talks:\nMika often says 'nyan'" in messages[0]["content"]


def test_memories_travel_with_the_newest_message_and_leave_the_prefix_alone():
    """Recalled lines go into the newest message as a plain note (no parentheses the model would copy); everything before is unchanged."""
    from companion.character.persona import default_character
    from companion.core.prompt import HistoryItem, NewMessage, build_messages

    history = [HistoryItem("user", "hi", "Sam"), HistoryItem("assistant", "Hello Sam!")]
    plain = build_messages(default_character(), history, NewMessage("what is my dog called?", "Sam"), conversation_start=False)
    noted = build_messages(
        default_character(), history, NewMessage("what is my dog called?", "Sam"), conversation_start=False,
        memories='- Sam said yesterday: "My dog is called Juniper."',
    )
    assert noted[:-1] == plain[:-1]
    last = noted[-1]["content"]
    assert last.startswith("What you remember about Sam") and "Juniper" in last and last.endswith("what is my dog called?")
    assert not last.startswith("(")


def test_she_answers_in_the_configured_language():
    """[persona] language adds one rule to the system prompt; English needs none; "auto" follows the person."""
    from companion.character.persona import default_character
    from companion.core.prompt import NewMessage, build_messages, prompt_language

    def system(language: str) -> str:
        return build_messages(default_character(), [], NewMessage("hi", "Sam"), conversation_start=False, language=prompt_language(language))[0]["content"]

    assert system("zh").endswith("Always answer in Chinese, whatever language the examples or instructions above are in.")
    assert system("pt_BR").endswith("Always answer in Portuguese, whatever language the examples or instructions above are in.")
    assert system("auto").endswith("Always answer in the language the other person writes or speaks in.")
    assert system("") == system("en") and "Always answer in" not in system("en")
