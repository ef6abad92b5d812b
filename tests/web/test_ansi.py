"""ANSI colours in task output: SGR codes become spans with fixed classes, everything else
a task wrote is escaped text or dropped."""

import pytest

from tasks.web.ansi import render, style_of


def html(text: str, state: str = "") -> str:
    return str(render(text, state)[0])


def test_plain_text_is_escaped():
    assert (
        html('<script>alert(1)</script> & "q"\n')
        == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;\n"
    )


def test_a_colour_becomes_a_span_until_reset():
    assert html("a\x1b[31mred\x1b[0mb") == 'a<span class="ansi-f1">red</span>b'


def test_bold_bright_and_background_combine():
    assert html("\x1b[1;92;44mx") == '<span class="ansi-b ansi-f10 ansi-g4">x</span>'


@pytest.mark.parametrize(
    ("codes", "classes"),
    [
        ("2", "ansi-d"),
        ("3", "ansi-i"),
        ("4", "ansi-u"),
        ("97", "ansi-f15"),
        ("107", "ansi-g15"),
        ("38;5;3", "ansi-f3"),
        ("48;5;12", "ansi-g12"),
        ("1;22", ""),
        ("31;39", ""),
        ("41;49", ""),
    ],
)
def test_each_sgr_code(codes, classes):
    out = html(f"\x1b[{codes}mx")
    assert out == (f'<span class="{classes}">x</span>' if classes else "x")


def test_colours_past_16_and_truecolor_are_dropped_without_eating_text():
    assert html("\x1b[38;5;200ma\x1b[38;2;1;2;3mb\x1b[1mc") == 'ab<span class="ansi-b">c</span>'


def test_empty_sgr_resets():
    assert html("\x1b[31ma\x1b[mb") == '<span class="ansi-f1">a</span>b'


def test_other_escape_sequences_and_controls_are_dropped():
    text = "\x1b[2J\x1b[1;1Hclear\x1b[K\x1b]0;title\x07 \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x07\x08\x00!\n"
    assert html(text) == "clear link!\n"


def test_an_escape_cannot_smuggle_markup():
    out = html('\x1b[31m<img src=x onerror="alert(1)">\x1b[0m')
    assert "<img" not in out and "&lt;img" in out


def test_a_carriage_return_redraws_its_line():
    assert html("10%\r50%\r100%\ndone\n") == "100%\ndone\n"


def test_a_line_ending_in_cr_or_crlf_keeps_what_it_showed():
    assert html("one\r\ntwo\r\n") == "one\ntwo\n"
    assert html("last\r") == "last"


def test_the_state_carries_from_one_chunk_to_the_next():
    first, state = render("\x1b[1;31mstart of a red")
    assert state == "1;31"
    second, end = render(" line\x1b[0m\n", state)
    assert str(second) == '<span class="ansi-b ansi-f1"> line</span>\n' and end == ""


@pytest.mark.parametrize("state", ["1;31", "92;104", "2;3;4;37;40", ""])
def test_a_state_reads_back_as_itself(state):
    assert style_of(state).params() == state


@pytest.mark.parametrize("bad", ["<b>", "1;31m", "x" * 100, "1" * 65])
def test_a_malformed_state_is_the_default(bad):
    assert style_of(bad).params() == ""
