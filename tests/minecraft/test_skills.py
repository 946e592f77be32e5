from companion.minecraft.skills import plan


def test_planner_turns_plain_requests_into_skill_steps():
    """The small-model path: common requests become skill steps naming the speaker; anything else is not guessed."""
    wood = plan("can you get some wood?", "Ann")
    assert [(s.skill, s.args) for s in wood] == [("collect", {"block": "oak_log", "count": 4})] and wood[0].says
    assert plan("dig 3 dirt please", "Ann")[0].args == {"block": "dirt", "count": 3}
    assert [(s.skill, s.args) for s in plan("follow me!", "Ann")] == [("follow", {"player": "Ann"})]
    assert plan("come here", "Ann")[0].skill == "goto"
    assert [s.skill for s in plan("let's build a small house", "Ann")] == ["collect"] + ["place"] * 4
    assert plan("stop that", "Ann")[0].skill == "stop"
    assert plan("craft a crafting table", "Ann")[0].args == {"item": "crafting_table", "count": 1}
    assert plan("what's your favourite colour?", "Ann") == []
