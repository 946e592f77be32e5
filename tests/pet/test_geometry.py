"""Where her window stands: remembered, kept on a screen that exists, resized around her feet."""

from companion.pet import geometry
from companion.pet.geometry import Geometry, Rect

MAIN = Rect(0, 0, 1920, 1080)
RIGHT = Rect(1920, 0, 2560, 1440)


def test_first_time_she_stands_at_the_bottom_right_of_the_main_screen():
    """With nothing remembered she appears in the corner, clear of the edge, not in the middle of the work."""
    g = geometry.first_place(MAIN)
    assert g.x + g.width == MAIN.width - geometry.MARGIN
    assert g.y + g.height == MAIN.height - geometry.MARGIN


def test_remembered_place_survives_a_restart(tmp_path):
    """Where she was dragged and how big she was made come back the next time."""
    path = tmp_path / "pet.json"
    geometry.save(path, Geometry(2500, 700, 1.3))
    assert geometry.load(path) == Geometry(2500, 700, 1.3)


def test_a_broken_or_foreign_place_file_is_ignored(tmp_path):
    """A half-written or hand-edited file means 'no place yet', never a crash at start."""
    path = tmp_path / "pet.json"
    for text in ("{", "[]", '{"x": "left"}', ""):
        path.write_text(text)
        assert geometry.load(path) is None
    assert geometry.load(tmp_path / "missing.json") is None


def test_a_scale_out_of_range_in_the_file_is_clamped(tmp_path):
    """A size edited to 50x does not make a window bigger than the screen."""
    path = tmp_path / "pet.json"
    path.write_text('{"x": 10, "y": 10, "scale": 50}')
    assert geometry.load(path).scale == geometry.MAX_SCALE


def test_she_stays_where_she_was_on_a_second_monitor():
    """On a screen that is still there, the remembered place is kept as it is."""
    g = Geometry(2500, 700)
    assert geometry.keep_on_screen(g, [MAIN, RIGHT]) == g


def test_unplugged_monitor_brings_her_back_to_the_main_screen():
    """When her monitor goes away she is not lost off-screen: she returns to the main screen's corner."""
    g = Geometry(2500, 700, 1.2)
    back = geometry.keep_on_screen(g, [MAIN])
    assert back == geometry.first_place(MAIN, 1.2)
    assert MAIN.overlap(back.rect()) == back.width * back.height


def test_half_off_the_edge_is_still_her_choice():
    """Dragged so that most of her still shows, she is not moved back."""
    g = Geometry(MAIN.width - 200, 300)  # 200 of 320 pixels show
    assert geometry.keep_on_screen(g, [MAIN]) == g


def test_scrolling_resizes_around_her_feet():
    """The wheel makes her bigger or smaller where she stands: her centre and feet stay put."""
    g = Geometry(1000, 500)
    bigger = geometry.scrolled(g, 2)
    assert bigger.width > g.width
    assert abs((bigger.x + bigger.width / 2) - (g.x + g.width / 2)) <= 1
    assert abs((bigger.y + bigger.height) - (g.y + g.height)) <= 1
    assert geometry.scrolled(bigger, -2).width == g.width


def test_scrolling_stops_at_the_size_limits():
    """However far the wheel turns, she stays between the smallest and largest sizes."""
    assert geometry.scrolled(Geometry(0, 0), 100).scale == geometry.MAX_SCALE
    assert geometry.scrolled(Geometry(0, 0), -100).scale == geometry.MIN_SCALE
