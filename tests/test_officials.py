"""What officials read: subjects by name, text per language (English and Korean), the engine's own
words from its catalogue, the report (rank order, collapsible explanations, "does not apply", a
laid-out graph, no horizontal overflow in Chromium), the decision letter and tables that fit."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine import Policy, Result, load_policy
from engine.cli import main
from engine.cli.decide import _table
from engine.core.errors import PolicyError
from engine.core.i18n import Text, Words, local, pick_language
from engine.explanation.letter import in_rank_order, outcome_label, who, write_letter
from engine.explanation.report import render_report
from tests.conftest import EXAMPLES, ROOT, RULES, chromium, chromium_command

STAGE1 = str(EXAMPLES / "stage1.yaml")
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots kept for a person to look at (ignored by git)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _package(tmp_path: Path, file: str, old: str, new: str) -> Path:
    package = tmp_path / "package"
    shutil.copytree(RULES, package, ignore=shutil.ignore_patterns("tests"))
    text = (package / file).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    (package / file).write_text(text.replace(old, new), encoding="utf-8")
    return package


# --- text per language --------------------------------------------------------------------------


def test_titles_and_messages_given_per_language_are_text_whose_value_is_the_english(policy: Policy) -> None:
    title = policy.ir.rules["sovereign"].title
    assert isinstance(title, Text) and title == 'The model is a sovereign ("from scratch") foundation model'
    assert local(title, "ko") == "모델이 독자적인 (프롬 스크래치) 파운데이션 모델이다"
    assert local(title, "fr") == title  # a language not given falls back to the English
    assert local(policy.ir.title, "ko") == "독자 AI 파운데이션 모델 프로젝트"
    assert local(policy.ir.stages["stage1"].title, "ko").startswith("1차 평가")


def test_a_message_given_per_language_is_filled_in_each(stage1: Result) -> None:
    reasons = {r.rule: r for r in stage1.decisions["nc-ai"].reasons}
    message = reasons["meets_minimum_total"].message
    assert message == "total score 69.0 is below the minimum of 70.0"  # records and JSON keep the English
    assert local(message, "ko") == "총점 69.0점이 최저 점수 70.0점에 미달합니다"


def test_a_text_without_english_is_refused_at_its_line(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        "scores.yaml",
        'title: {en: "Benchmark score (NIA',
        'title: {ko: "Benchmark score (NIA',
    )
    with pytest.raises(PolicyError) as refused:
        load_policy(package)
    rendered = [d.render() for d in refused.value.diagnostics]
    assert any("scores.yaml:" in r and "needs its English (`en`)" in r for r in rendered), rendered


def test_a_plain_string_stays_valid_and_a_missing_translation_is_a_warning_at_its_line(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        "sovereignty.yaml",
        'title: {en: "Ethical sovereignty test", ko: "윤리적 독자성 기준"}',
        "title: Ethical sovereignty test",
    )
    policy = load_policy(package)
    assert policy.ir.rules["ethical_sovereignty"].title == "Ethical sovereignty test"
    assert local(policy.ir.rules["ethical_sovereignty"].title, "ko") == "Ethical sovereignty test"  # English
    found = [d for d in policy.warnings if d.code == "missing-translation"]
    assert len(found) == 1 and "`Ethical sovereignty test` is not given in `ko`" in found[0].message
    assert str(found[0].span).startswith(str(package / "sovereignty.yaml") + ":")


def test_the_engines_words_come_from_its_catalogue_with_english_as_the_fallback() -> None:
    ko = Words("ko")
    assert ko("ranked {rank} of {size}", rank=2, size=5) == "5개 팀 중 2위"
    assert ko("a sentence nobody translated") == "a sentence nobody translated"
    assert Words("en")("does not apply") == "does not apply" and ko("does not apply") == "해당 없음"
    import datetime as dt

    assert ko.date(dt.date(2026, 1, 25)) == "2026년 1월 25일"


def test_every_word_the_report_and_letter_use_is_in_the_korean_catalogue() -> None:
    """Every literal the renderers pass to the catalogue has a Korean translation (none falls back)."""
    sources = ["report.py", "letter.py"]
    used: set[str] = set()
    for name in sources:
        text = (ROOT / "engine" / "explanation" / name).read_text(encoding="utf-8")
        used |= set(re.findall(r"\bw\(\"([^\"]+)\"", text)) | set(re.findall(r"\bw\('([^']+)'", text))
    ko = Words("ko")
    untranslated = sorted(m for m in used if ko(m) == m)
    assert len(used) > 40 and not untranslated, untranslated


@pytest.mark.parametrize(
    ("header", "lang"),
    [("ko-KR,ko;q=0.9,en;q=0.8", "ko"), ("en-US,en;q=0.9", "en"), ("fr", "en"), (None, "en"), ("en;q=0.2, ko", "ko")],
)
def test_accept_language_picks_a_language_the_engine_speaks(header: str | None, lang: str) -> None:
    assert pick_language(header) == lang


# --- names, rank order ----------------------------------------------------------------------------


def test_subjects_are_shown_by_the_name_the_manifest_names(policy: Policy, stage1: Result) -> None:
    assert policy.ir.schema.name_field == "name"
    decisions = in_rank_order(stage1)
    assert [who(policy.ir, d) for d in decisions] == ["LG AI Research", "SK Telecom", "Upstage", "Naver Cloud", "NC AI"]
    assert outcome_label(policy.ir, "disqualified", "ko") == "실격"
    assert outcome_label(policy.ir, "not_selected", "en") == "not selected"


def test_the_table_widens_to_long_outcome_names_and_keeps_wrapped_reasons_aligned(
    policy: Policy, stage1: Result
) -> None:
    text = _table(stage1, None, "en", 90, policy.ir)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("ID"))
    assert header.split() == ["ID", "OUTCOME", "RANK", "NAME"]
    rows = [line for line in lines if line.startswith(("lg-ai-research", "naver-cloud"))]
    assert all(row.index(row.split()[1]) == header.index("OUTCOME") for row in rows)
    assert "Naver Cloud" in text and all(len(line) <= 90 for line in lines if line.startswith(" "))
    start = next(i for i, line in enumerate(lines) if "✗ weights_trained_by_team:" in line)
    hang = lines[start].index("pretrained weights")
    assert lines[start + 1].startswith(" " * hang) and not lines[start + 1].startswith(" " * (hang + 1))


def test_explain_gives_the_packages_titles_and_messages_in_korean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", str(RULES), STAGE1, "nc-ai", "--lang", "ko")
    assert code == 0 and "✗ 총점이 최저 점수 이상이다 (규칙 `meets_minimum_total`)" in out
    assert "→ 총점 69.0점이 최저 점수 70.0점에 미달합니다" in out
    # the engine's own words too: the outcome's label, the stage, the rank, each row and what it did
    assert out.startswith("nc-ai: 탈락 (단계 `stage1`, 2026-01-15 기준) — NC AI\n  5개 팀 중 5위 (선정 자리 4개)\n")
    assert "결과 행 1: `not eligible`이면 `참여 자격 미달` — 해당 없음" in out
    assert " — decides" not in out and "ranked 5" not in out and "parameter `" not in out


def test_the_table_speaks_korean_with_lang_ko(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "evaluate", str(RULES), STAGE1, "--lang", "ko")
    assert code == 0 and out.startswith("정책 sovereign-ai ")
    assert "ID              결과           순위        이름" in out and "5개 중 1위" in out
    assert "선정 자리 4개: 3개 충원, 1개 미충원 → additional_call: " in out


def test_explanations_say_does_not_apply_for_a_fact_of_an_absent_part(stage1: Result) -> None:
    text = stage1.decisions["naver-cloud"].explain().to_text()
    # its language model's weights are the team's own: they have no upstream, whose lineage does not apply
    assert "model.components[0].weights.upstream.lineage.country = does not apply" in text
    assert "model.components[1].weights.origin = upstream" in text


# --- the report -----------------------------------------------------------------------------------


def test_the_korean_report_lists_outcomes_in_rank_order_with_names_and_korean_words(
    policy: Policy, stage1: Result
) -> None:
    page = render_report(policy, stage1, "ko")
    assert "<html lang='ko'>" in page and "독자 AI 파운데이션 모델 프로젝트" in page and "1차 평가" in page
    outcomes = page[page.index("class='outcomes'") : page.index("</table>", page.index("class='outcomes'"))]
    order = [outcomes.index(name) for name in ("LG AI Research", "SK Telecom", "Upstage", "Naver Cloud", "NC AI")]
    assert order == sorted(order)
    assert "실격" in outcomes and "탈락" in outcomes and "통과" in outcomes
    assert "<details class='formula'><summary>수식</summary>" in page  # formulas only behind a disclosure
    assert "해당 없음" in page  # weights.origin of a code-only component
    assert "@media print" in page and "<script" not in page


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (Debian package graphviz)")
def test_the_graph_is_laid_out_by_graphviz_with_every_label_whole(policy: Policy, stage1: Result) -> None:
    page = render_report(policy, stage1)
    assert page.count('class="graph laid-out"') == 5 and "…" not in page.split('class="graph-box"')[1][:20000]
    assert "Graphviz is not installed" not in page


@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed (Debian package chromium)")
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_the_report_fits_the_page_in_chromium_with_every_subject_by_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lang: str
) -> None:
    target = tmp_path / "report.html"
    code, _, _ = run(capsys, "report", str(RULES), STAGE1, "--lang", lang, "-o", str(target))
    assert code == 0
    # A copy with a probe: after layout, the page's width against the window's (the report has no script).
    probe = tmp_path / "probe.html"
    probe.write_text(
        target.read_text(encoding="utf-8").replace(
            "</body>",
            "<script>document.body.setAttribute('data-overflow', String(document.documentElement.scrollWidth - "
            "window.innerWidth));</script></body>",
        ),
        encoding="utf-8",
    )
    command = chromium_command(tmp_path / "profile")
    for width in (1280, 800):
        dom = subprocess.run(
            [*command, f"--window-size={width},1000", "--dump-dom", probe.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        overflow = re.search(r'data-overflow="(-?\d+)"', dom.stdout)
        assert overflow and int(overflow.group(1)) <= 0, f"{width}px: {overflow and overflow.group(1)}px too wide"
    for name in ("LG AI Research", "SK Telecom", "Upstage", "Naver Cloud", "NC AI"):
        assert f"<h2>{name}: " in dom.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{lang}.png"
    subprocess.run(
        [*command, "--window-size=1280,2400", f"--screenshot={shot}", target.as_uri()], capture_output=True, timeout=120
    )
    assert shot.exists() and shot.stat().st_size > 20_000  # a real picture, not a blank page


# --- the letter -----------------------------------------------------------------------------------


def test_the_letter_to_naver_cloud_cites_the_sovereignty_rules_and_the_objection_deadline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "letter", str(RULES), STAGE1, "naver-cloud")
    assert code == 0
    assert "To: Naver Cloud (naver-cloud)" in out and "Decision: disqualified" in out
    assert "ranked 4 of 5 for 4 place(s)" in out
    assert "Every component's weights are initialised and trained by the team" in out
    assert "Additional-call guide (Jan 2026), sovereignty, technical test" in out
    assert "You may object within 10 days of this decision, that is by January 25, 2026." in out
    code, out, _ = run(capsys, "letter", str(RULES), STAGE1, "naver-cloud", "--lang", "ko")
    assert "결정: 실격" in out and "2026년 1월 25일까지 이의신청" in out and "기술적 독자성 기준" in out


def test_the_letter_to_a_team_kept_says_what_selection_brings(policy: Policy, stage1: Result) -> None:
    letter = write_letter(policy, stage1, "lg-ai-research")
    assert letter.outcome == "advanced" and letter.reasons == ()  # nothing stood in its way
    assert any(what.startswith("Government GPUs (NVIDIA B200)") and "512 GPUs" in what for what, _ in letter.grants)
    page = letter.to_html()
    assert "What the decision brings" in page and "K-AI Company designation" in page and "<script" not in page


def test_letters_for_every_subject_and_bad_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "letters"
    code, out, _ = run(capsys, "letter", str(RULES), STAGE1, "--all", "-o", str(folder), "--lang", "ko")
    assert code == 0 and sorted(p.name for p in folder.iterdir()) == sorted(
        f"{i}.html" for i in ("lg-ai-research", "sk-telecom", "upstage", "naver-cloud", "nc-ai")
    )
    assert "<html lang='ko'>" in (folder / "nc-ai.html").read_text(encoding="utf-8")
    one = tmp_path / "naver.html"
    assert run(capsys, "letter", str(RULES), STAGE1, "naver-cloud", "-o", str(one))[0] == 0 and one.exists()
    code, _, err = run(capsys, "letter", str(RULES), STAGE1, "no-such-team")
    assert code == 2 and "no subject `no-such-team`" in err
    assert run(capsys, "letter", str(RULES), STAGE1, "--all")[0] == 2
    assert run(capsys, "letter", str(RULES), STAGE1)[0] == 2


def test_the_stage_view_speaks_korean_with_lang_ko(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", str(RULES), STAGE1, "--lang", "ko")
    assert code == 0 and out.startswith("단계 `stage1`: 1차 평가")
    assert "평가 대상 (`scores is not None`): 5개 중 5개" in out and "순위 기준: 총점, 다음으로 " in out
    assert "→ 실격: " in out and "선정 자리: 4개; 충원: 3개; 미충원: 1개" in out
    assert "1개 자리 미충원 → additional_call: " in out and "차순위에게 넘어가지 않습니다" in out
    assert "ranked by" not in out and "place(s) left open" not in out
