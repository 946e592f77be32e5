from companion.text.chunking import DisplayFilter, ReplyChunker, clean_for_speech, extract_emotions


def stream(chunker: ReplyChunker, text: str, step: int = 1):
    """Feed text in small steps; return (sentences, index of the feed that produced each)."""
    out = []
    for i in range(0, len(text), step):
        for sentence in chunker.feed(text[i : i + step]):
            out.append((sentence, i))
    for sentence in chunker.finish():
        out.append((sentence, len(text)))
    return out


def test_first_sentence_is_emitted_before_the_stream_ends():
    """The first sentence comes out as soon as the next token shows it is complete."""
    text = "Hi there! This second sentence is still being written"
    got = stream(ReplyChunker(), text)
    assert got[0][0].text == "Hi there!"
    assert got[0][1] <= len("Hi there! ")
    assert got[1][0].text == "This second sentence is still being written"


def test_long_first_clause_is_cut_early_but_later_clauses_are_not():
    """A long first clause is cut at its comma so speech can start; later sentences stay whole."""
    text = "Well, I have been thinking about this for a long while, and the answer is yes. Then, later, we go."
    sentences = [s.text for s, _ in stream(ReplyChunker(first_clause_chars=40), text)]
    assert sentences[0] == "Well, I have been thinking about this for a long while,"
    assert sentences[1] == "and the answer is yes."
    assert sentences[2] == "Then, later, we go."


def test_abbreviations_initials_and_numbers_do_not_end_sentences():
    """Mr., e.g., initials and decimals stay inside their sentence."""
    text = "Mr. Smith met J. R. Tolkien, e.g. at 3.5 pm. Then he left."
    sentences = [s.text for s, _ in stream(ReplyChunker(first_clause_chars=1000), text)]
    assert sentences == ["Mr. Smith met J. R. Tolkien, e.g. at 3.5 pm.", "Then he left."]


def test_emotion_tags_become_cues_and_are_never_spoken():
    """[happy] and <sad> tags are extracted into emotions and removed from display and speech."""
    text = "[happy] I missed you! <sad> But you were gone so long."
    got = [s for s, _ in stream(ReplyChunker(), text, step=3)]
    assert [s.emotions for s in got] == [("happy",), ("sad",)]
    assert all("[" not in s.speech and "<" not in s.speech for s in got)
    assert got[0].speech == "I missed you!"


def test_tag_split_across_tokens_is_still_recognised():
    """A tag arriving as '[ha' + 'ppy]' is not cut in half or spoken."""
    chunker = ReplyChunker()
    out = []
    for token in ["Oh", " wow", "! [ha", "ppy", "] That", " is great.", " Yes"]:
        out += chunker.feed(token)
    out += chunker.finish()
    assert [s.text for s in out] == ["Oh wow!", "That is great.", "Yes"]
    assert out[1].emotions == ("happy",)


def test_tag_alone_on_a_line_carries_its_emotion_to_the_next_sentence():
    """A tag on its own line attaches to the sentence that follows."""
    out = [s for s, _ in stream(ReplyChunker(), "[surprised]\nNo way! Really.")]
    assert out[0].text == "No way!" and out[0].emotions == ("surprised",)


def test_speech_cleanup_removes_markdown_urls_and_emoji():
    """Markdown markers, links, code and emoji are not read aloud; words are kept."""
    text = "## Plan\n**Bold** and _italic_ see [the docs](https://x.io/a) or https://y.io now 🎉👍🏽 `ok`"
    assert clean_for_speech(text) == "Plan Bold and italic see the docs or now ok"


def test_reasoning_blocks_are_dropped():
    """<think> blocks from reasoning models are neither shown nor spoken."""
    text = "<think>The user greets me. I should greet back.</think>Hello! Nice day."
    got = [s.text for s, _ in stream(ReplyChunker(), text, step=4)]
    assert got == ["Hello!", "Nice day."]
    shown = DisplayFilter()
    display = "".join(shown.feed(text[i : i + 3]) for i in range(0, len(text), 3)) + shown.finish()
    assert display == "Hello! Nice day."


def test_run_on_text_is_cut_at_a_word_boundary():
    """A reply with no punctuation is still cut, at a space, by max_chars."""
    text = " ".join(["word"] * 100)
    got = [s.text for s, _ in stream(ReplyChunker(max_chars=60), text)]
    assert len(got) > 1
    assert all(len(s) <= 60 for s in got)
    assert " ".join(got).split() == text.split()


def test_display_filter_strips_tags_while_streaming():
    """Streamed display text never shows a tag, even one split across tokens."""
    f = DisplayFilter()
    parts = [f.feed(t) for t in ["[ha", "ppy] Hi", " <", "sad> there"]]
    assert "".join(parts) + f.finish() == " Hi  there"
    assert "[" not in parts[0] and "<" not in parts[2]


def test_extract_emotions_keeps_markdown_links_and_drops_closing_tags():
    """Markdown links are not emotions; echoed closing tags vanish."""
    text, emotions = extract_emotions("See [docs](http://a.b) <happy>yay</happy>")
    assert emotions == ["happy"]
    assert text == "See [docs](http://a.b) yay"


def test_voice_first_piece_is_cut_after_n_words_without_punctuation():
    """With first_words, the first piece is spoken after that many words; later pieces wait for punctuation."""
    text = "Well I think that the best thing to do tonight is cook pasta with garlic and then watch a film together. Yes."
    pieces = [s.text for s, _ in stream(ReplyChunker(first_clause_chars=1000, first_words=5), text)]
    assert pieces[0] == "Well I think that the"
    assert pieces[1].startswith("best thing") and pieces[1].endswith("together.")
    whole = [s.text for s, _ in stream(ReplyChunker(first_clause_chars=1000), text)]
    assert whole[0].startswith("Well I think") and whole[0].endswith("together.")


def test_clean_input_drops_lone_surrogates_and_control_characters():
    """Half an emoji and control bytes are removed; emoji, tabs and newlines stay."""
    from companion.text.chunking import clean_input

    assert clean_input("hi \ud83d there\x00\x1b[0m 😀\tok\r\nnext") == "hi  there[0m 😀\tok\nnext"
    assert clean_input("") == ""
