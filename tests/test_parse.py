"""The answer parser: what real models write → the final answer, the rule, strictness; never a guess."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jmle_eval.score.nfkc import nfkc
from jmle_eval.score.parse import format_answer, parse, parse_extracted, parse_lenient, strip_reasoning

# (reply, question type, expected answer or None, expected rule, strict)
CASES = [
    # the required format
    ("【回答】a", "single", ("a",), "marker", True),
    ("考察…\n\n【回答】c", "single", ("c",), "marker", True),
    ("【回答】a,c", "multi", ("a", "c"), "marker", True),
    ("【回答】a, c", "multi", ("a", "c"), "marker", True),
    ("【回答】e,b", "multi", ("b", "e"), "marker", True),
    ("【回答】0.40", "numeric", ("0.40",), "marker", True),
    ("【回答】315", "numeric", ("315",), "marker", True),
    ("【回答】c  ", "single", ("c",), "marker", True),
    # the marker with sloppy answers: still read, but not strict
    ("【回答】c】", "single", ("c",), "marker", False),
    ("【回答】**b**", "single", ("b",), "marker", False),
    ("【回答】C", "single", ("c",), "marker", False),
    ("【回答】ｃ", "single", ("c",), "marker", False),
    ("【回答】ａ，ｃ", "multi", ("a", "c"), "marker", False),
    ("【回答】a、c", "multi", ("a", "c"), "marker", False),
    ("【回答】ac", "multi", ("a", "c"), "marker", False),
    ("【回答】a と c", "multi", ("a", "c"), "marker", False),
    ("【回答】a および e", "multi", ("a", "e"), "marker", False),
    ("【回答】A / D", "multi", ("a", "d"), "marker", False),
    ("【回答】c です。", "single", ("c",), "marker", False),
    ("【回答】c（急性膵炎）", "single", ("c",), "marker", False),
    ("【回答】d. 心臓カテーテル検査", "single", ("d",), "marker", False),
    ("【回答】c because the lipase is high", "single", ("c",), "marker", False),
    ("【回答】選択肢c", "single", ("c",), "marker", False),
    ("【回答】 「b」", "single", ("b",), "marker", False),
    ("### 結論\n【回答】\nd", "single", ("d",), "marker", False),
    ("【回答】０.４", "numeric", ("0.4",), "marker", False),
    ("【回答】０．４０", "numeric", ("0.40",), "marker", False),
    ("【回答】1,130 kcal", "numeric", ("1130",), "marker", False),
    ("【回答】28 kg/m²", "numeric", ("28",), "marker", False),
    ("【回答】約 2.1 g/日", "numeric", ("2.1",), "marker", False),
    ("### 最終回答：\n【回答】0.48", "numeric", ("0.48",), "marker", True),
    # the last marker outside reasoning wins
    ("【回答】a\n見直すと誤り。\n【回答】c", "single", ("c",), "marker", True),
    ("【回答】c\n\n【回答】c", "single", ("c",), "marker", True),
    ("<think>【回答】a</think>\n【回答】b", "single", ("b",), "marker", True),
    ("<think>\n考える…【回答】a\n</think>\n\n【回答】d", "single", ("d",), "marker", True),
    ("長い推論…【回答】a\n</think>\n【回答】e", "single", ("e",), "marker", True),
    (
        "<|channel|>analysis<|message|>【回答】a<|end|><|channel|>final<|message|>【回答】b",
        "single",
        ("b",),
        "marker",
        True,
    ),
    ("【解答】b\n\n【回答】d", "single", ("d",), "marker", True),
    ("【回答】d\n\n【解答】b", "single", ("b",), "marker_variant", False),
    # a bracketed marker outranks an inline label inside the explanation
    ("【回答】c\n補足: 正解は d とする意見もある", "single", ("c",), "marker", True),
    # near-miss markers
    ("【解答】c", "single", ("c",), "marker_variant", False),
    ("【答え】a】", "single", ("a",), "marker_variant", False),
    ("【正解】b", "single", ("b",), "marker_variant", False),
    ("[回答] e", "single", ("e",), "marker_variant", False),
    ("【最終回答】a,d", "multi", ("a", "d"), "marker_variant", False),
    ("回答：c", "single", ("c",), "label", False),
    ("回答: c", "single", ("c",), "label", False),
    ("答え: ｃ", "single", ("c",), "label", False),
    ("解答：b,e", "multi", ("b", "e"), "label", False),
    ("Answer: C", "single", ("c",), "label", False),
    ("Final answer: b and d", "multi", ("b", "d"), "label", False),
    ("よって正解はbです。", "single", ("b",), "label", False),
    ("The answer is e.", "single", ("e",), "label", False),
    ("**回答**：a", "single", ("a",), "label", False),
    ("解答: 7.2", "numeric", ("7.2",), "label", False),
    ("解答: ①146②mg/dl", "numeric", ("146",), "label", False),
    ("回答は以下のとおりです。\n\n【回答】c", "single", ("c",), "marker", True),
    # no marker: a reply that is nothing but the answer
    ("c", "single", ("c",), "bare", False),
    ("**c**。", "single", ("c",), "bare", False),
    ("a, b", "multi", ("a", "b"), "bare", False),
    ("28", "numeric", ("28",), "bare", False),
    ("28 kcal", "numeric", ("28",), "bare", False),
    ("\\boxed{d}", "single", ("d",), "boxed", False),
    ("説明です。\n\nc", "single", ("c",), "last_line", False),
    # letters are choices only as a word of their own: a drug name or a vitamin is no answer
    ("【回答】ace", "multi", ("a", "c", "e"), "marker", False),
    ("【回答】a, c", "multi", ("a", "c"), "marker", True),
    ("【回答】d急性喉頭蓋炎", "single", ("d",), "marker", False),  # one letter glued to its choice's text
    ("【回答】a、ace阻害薬を追加", "multi", ("a",), "marker", False),
    ("正解は b です。ace阻害薬は禁忌。", "single", ("b",), "label", False),
    ("【回答】ace阻害薬", "single", None, None, False),
    ("【回答】ace阻害薬", "multi", None, None, False),
    ("【回答】ca拮抗薬", "multi", None, None, False),
    ("【回答】b12欠乏", "single", None, None, False),
    # parse failures: never a guess
    ("", "single", None, None, False),
    ("【回答】", "single", None, None, False),
    ("【回答】わからない", "single", None, None, False),
    ("【回答】f", "single", None, None, False),
    ("【回答】none", "single", None, None, False),
    ("【回答】2 8", "numeric", None, None, False),
    ("【回答】c", "numeric", None, None, False),
    ("【回答】12", "single", None, None, False),
    ("最も可能性が高いのは b です。", "single", None, None, False),
    ("画像がないため回答できません。", "single", None, None, False),
    ("<think>【回答】a", "single", None, None, False),
    ("回答は以下のとおりです。", "single", None, None, False),
    ("\\boxed{x}", "single", None, None, False),
]


@pytest.mark.parametrize(("reply", "qtype", "answer", "rule", "strict"), CASES)
def test_parser_reads_what_models_write(reply, qtype, answer, rule, strict):
    got = parse(reply, qtype)
    assert (got.answer, got.rule, got.strict) == (answer, rule, strict)


def test_parse_failure_has_no_answer_and_no_rule():
    got = parse("わかりません", "single")
    assert not got.ok and got.answer is None and got.rule is None


def test_choice_letters_beyond_e_are_accepted_only_when_the_question_has_them():
    assert parse("【回答】f", "single", "abcdef").answer == ("f",)
    assert parse("【回答】f", "single", "abcde").answer is None


def test_a_custom_marker_from_the_run_config_is_the_strict_one():
    got = parse_lenient("ANSWER>> b", "single", marker="ANSWER>>")
    assert (got.answer, got.rule, got.strict) == (("b",), "marker", True)
    assert parse_lenient("【回答】b", "single", marker="ANSWER>>").rule == "marker_variant"


@pytest.mark.parametrize(
    ("text", "qtype", "answer"),
    [
        ("a", "single", ("a",)),
        ("a,c", "multi", ("a", "c")),
        ("ca", "multi", ("a", "c")),
        ("7.2", "numeric", ("7.2",)),
        ("146", "numeric", ("146",)),
        (" b ", "single", ("b",)),
        ("a, b", "multi", None),  # IgakuQA's exact-match grader did not accept the space
        ("解答: 7.2", "numeric", None),
        ("b: 上顎癌再発が最も考えられる", "single", None),
        ("g", "single", None),
        ("", "single", None),
        (None, "single", None),
    ],
)
def test_extracted_mode_accepts_only_a_bare_answer(text, qtype, answer):
    assert parse_extracted(text, qtype).answer == answer
    assert parse(text, qtype, mode="extracted").answer == answer


def test_strip_reasoning_keeps_only_the_reply():
    assert strip_reasoning("<think>x</think>reply").strip() == "reply"
    assert strip_reasoning("x</think>reply") == "reply"
    assert strip_reasoning("reply<think>unfinished") == "reply"


_letters = st.lists(st.sampled_from("abcde"), min_size=1, max_size=3, unique=True).map(sorted)
_numbers = st.one_of(
    st.integers(min_value=0, max_value=99999).map(str),
    st.decimals(min_value=0, max_value=999, places=2, allow_nan=False, allow_infinity=False).map(str),
)
_noise = st.text(alphabet="あいうえお考察。、 \n", max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gold=_letters, before=_noise, style=st.integers(0, 5))
def test_formatted_gold_letters_always_parse_back(gold, before, style):
    qtype = "multi" if len(gold) > 1 else "single"
    answer = format_answer(gold, qtype)
    variants = [
        f"{before}\n【回答】{answer}",
        f"<think>【回答】z {before}</think>{before}\n【回答】{answer.upper()}",
        f"{before}\n【回答】**{'、'.join(gold)}**",
        f"{before}\n【回答】{''.join(gold)}\n",
        f"{before}\n回答：{' と '.join(gold)}",
        f"{before}\n【回答】{answer.translate(str.maketrans('abcde,', 'ａｂｃｄｅ，'))}",
    ]
    assert parse(variants[style], qtype).answer == tuple(gold)


@settings(max_examples=300, deadline=None)
@given(value=_numbers, before=_noise, unit=st.sampled_from(["", " mL", "kcal", " g/日", "％"]))
def test_formatted_gold_numbers_always_parse_back(value, before, unit):
    assert parse(f"{before}\n【回答】{value}{unit}", "numeric").answer == (value,)
    full_width = value.translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))
    assert parse(f"{before}\n【回答】{full_width}", "numeric").answer == (value,)
    assert parse(f"【回答】{value}", "numeric").strict


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), qtype=st.sampled_from(["single", "multi", "numeric"]))
def test_parser_never_raises_and_an_answer_always_has_a_rule(text, qtype):
    got = parse(text, qtype)
    assert (got.answer is None) == (got.rule is None)
    assert not got.strict or got.rule == "marker"


# Text where NFKC's pieces interact: full-width and half-width forms, kana with voicing marks (combining and
# spacing), combining accents after ASCII, Hangul jamo, ligatures, compatibility symbols, and any character at all.
_NFKC_HARD = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            list("aZ9 \n、。【】ー〜あがぱアガパ医師ｱｶﾞﾊﾟﾞﾟ：（）ａＡ０　？％～①℃㎎Ⅱ½²µﬁ…éÅ가\u1100\u1161\u11a8")
        ),
        st.sampled_from(["\u0301", "\u0308", "\u3099", "\u309a", "\u309b", "\u309c", "\u0b47", "\u0b3e"]),
        st.characters(),
    ),
    max_size=60,
)


@settings(max_examples=2000, deadline=None)
@given(text=_NFKC_HARD)
def test_fast_nfkc_is_exactly_unicodedata_nfkc(text):
    assert nfkc(text) == unicodedata.normalize("NFKC", text)
