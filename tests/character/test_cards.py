import base64
import io
import json
import struct
import zipfile
import zlib

import pytest

from companion.character.cards import CardError, placeholder_png, read_card_file, read_png_card, write_png_card
from companion.character.persona import load_character

V2 = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "Aria",
        "description": "{{char}} is a pirate.",
        "personality": "bold",
        "scenario": "",
        "first_mes": "Ahoy {{user}}!",
        "mes_example": "",
        "creator_notes": "notes",
        "system_prompt": "{{original}} Talk like a pirate.",
        "post_history_instructions": "",
        "alternate_greetings": ["Yo ho!"],
        "tags": ["pirate"],
        "creator": "me",
        "character_version": "2",
        "extensions": {"depth_prompt": {"depth": 4, "prompt": "arr"}, "some_tool": {"x": [1, 2]}},
    },
}
V3 = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {**V2["data"], "name": "Aria the Third", "nickname": "Ari", "group_only_greetings": [], "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}]},
}


def png_with(*chunks: tuple[str, dict | bytes]) -> bytes:
    png = placeholder_png(4)
    out = png[: len(png) - 12]  # before IEND
    for key, value in chunks:
        payload = value if isinstance(value, bytes) else base64.b64encode(json.dumps(value).encode())
        body = key.encode() + b"\x00" + payload
        out += struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return out + png[-12:]


def test_v2_json(tmp_path):
    """A V2 JSON card loads with every field."""
    path = tmp_path / "aria.json"
    path.write_text(json.dumps(V2))
    c = load_character(path)
    assert (c.name, c.personality, c.alternate_greetings, c.tags) == ("Aria", "bold", ["Yo ho!"], ["pirate"])
    assert c.extensions["some_tool"] == {"x": [1, 2]}
    assert c.greeting("Bob") == "Ahoy Bob!"


def test_v3_json_uses_nickname_for_char(tmp_path):
    """A V3 card's nickname is what {{char}} means."""
    path = tmp_path / "aria3.json"
    path.write_text(json.dumps(V3))
    c = load_character(path)
    assert c.name == "Aria the Third" and c.display_name == "Ari"
    from companion.core.prompt import NewMessage, build_messages

    system = build_messages(c, [], NewMessage("hi", "Bob"), conversation_start=True)[0]["content"]
    assert "Ari is a pirate." in system
    assert "Talk like a pirate." in system and "{{original}}" not in system


def test_png_with_chara_chunk(tmp_path):
    """A PNG with a V2 'chara' chunk loads."""
    path = tmp_path / "card.png"
    path.write_bytes(png_with(("chara", V2)))
    assert load_character(path).name == "Aria"


def test_png_with_both_chunks_prefers_ccv3_case_insensitively(tmp_path):
    """When both chunks exist the V3 one wins, whatever the keyword case."""
    path = tmp_path / "card.png"
    path.write_bytes(png_with(("Chara", V2), ("CCV3", V3)))
    assert load_character(path).name == "Aria the Third"


def test_charx(tmp_path):
    """A CHARX zip with card.json at its root loads."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("card.json", json.dumps(V3))
        z.writestr("assets/icon/main.png", placeholder_png(2))
    path = tmp_path / "card.charx"
    path.write_bytes(buf.getvalue())
    assert load_character(path).nickname == "Ari"


@pytest.mark.parametrize(
    "content, expected",
    [
        (png_with(("chara", b"!!!not base64!!!")), "not valid base64"),
        (png_with(("chara", base64.b64encode(b"{broken"))), "not valid JSON"),
        (png_with(("tEXt", b"x")), "holds no character card"),
        (json.dumps({"spec": "chara_card_v2", "data": {"description": "no name"}}).encode(), "no 'name'"),
        (b"PK\x03\x04garbage", "not a valid zip"),
        (json.dumps({"spec": "chara_card_v2", "data": {"name": "A", "tags": "x"}}).encode(), "'tags'"),
    ],
)
def test_malformed_cards_give_clear_errors(tmp_path, content, expected):
    """Bad base64, bad JSON, a missing name, a broken zip and wrong field types are named."""
    path = tmp_path / "bad.card"
    path.write_bytes(content)
    with pytest.raises(CardError, match=expected) as err:
        load_character(path)
    assert str(path) in str(err.value)


def test_huge_file_is_refused(tmp_path):
    """A card file over the size limit is refused before it is read."""
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.seek(40 * 1024 * 1024)
        f.write(b"\0")
    with pytest.raises(CardError, match="too large"):
        load_character(path)


def test_export_round_trip_keeps_fields_and_unknown_extensions(tmp_path):
    """Export to V3 JSON and PNG, re-import: fields, lorebook and unknown extensions are intact."""
    card = json.loads(json.dumps(V2))
    card["data"]["character_book"] = {"entries": [{"keys": ["ship"], "content": "The ship is the Gull.", "enabled": True, "insertion_order": 1, "extensions": {"custom": 1}}], "extensions": {"book_ext": True}}
    card["top_level_unknown"] = {"keep": "me"}
    src = tmp_path / "src.json"
    src.write_text(json.dumps(card))
    c = load_character(src)

    v3 = c.to_v3()
    assert v3["spec"] == "chara_card_v3" and v3["top_level_unknown"] == {"keep": "me"}
    out_json = tmp_path / "out.json"
    out_json.write_text(json.dumps(v3))
    out_png = tmp_path / "out.png"
    out_png.write_bytes(c.export_png())
    for path in (out_json, out_png):
        again = load_character(path)
        assert again.name == "Aria" and again.alternate_greetings == ["Yo ho!"]
        assert again.extensions == V2["data"]["extensions"]
        assert again.book is not None and again.book.entries[0].content == "The ship is the Gull."
        assert again.book.raw["extensions"] == {"book_ext": True}
    # the PNG also carries a V2 copy for older readers
    assert read_png_card(out_png.read_bytes())["spec"] == "chara_card_v3"
    assert b"chara\x00" in out_png.read_bytes()


def test_png_export_replaces_old_card_chunks():
    """Writing a card into a PNG that already has one leaves exactly one of each chunk."""
    png = write_png_card(png_with(("chara", V2), ("ccv3", V3)), {"spec": "chara_card_v3", "data": {"name": "New"}}, v2_copy={"data": {"name": "New"}})
    assert png.count(b"ccv3\x00") == 1 and png.count(b"chara\x00") == 1
    assert read_png_card(png)["data"]["name"] == "New"


def test_alternate_greetings_are_used_one_per_conversation():
    """Each conversation opens with first_mes or an alternate greeting, the same one every time for it, and the prompt agrees."""
    from companion.character.persona import character_from_dict
    from companion.core.prompt import NewMessage, build_messages

    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Ava", "description": "A pilot.", "first_mes": "Hello, {{user}}!",
        "alternate_greetings": ["Welcome aboard, {{user}}.", "Oh! {{user}}, you startled me."]}}
    ava = character_from_dict(card)
    seen = {ava.greeting("Sam", seed=f"conv-{i}") for i in range(30)}
    assert seen == {"Hello, Sam!", "Welcome aboard, Sam.", "Oh! Sam, you startled me."}
    assert ava.greeting("Sam", seed="conv-7") == ava.greeting("Sam", seed="conv-7")
    prompt = build_messages(ava, [], NewMessage("hi", "Sam"), conversation_start=True, seed="conv-7")
    assert prompt[1] == {"role": "assistant", "content": ava.greeting("Sam", seed="conv-7")}


def test_deeply_nested_card_is_a_clear_card_error(tmp_path):
    """A JSON card nested thousands deep is refused with a CardError naming the problem."""
    path = tmp_path / "deep.json"
    path.write_text('{"data": ' + "[" * 3000 + "]" * 3000 + "}")
    with pytest.raises(CardError, match="nested too deeply"):
        read_card_file(path)
