"""Terminal mode: `python -m bot refine` runs the autopilot without Telegram, writes every
image and a report (JSON and a self-contained HTML page)."""

from __future__ import annotations

import io
import json
import re

from bot.cli.refine import refine_to_directory
from tests.cli_helpers import clean_environment, run_cli
from tests.fakes.openai_server import default_critic
from tests.fakes.pngs import prompt_of
from tests.test_e2e_photos import product_photo

BRIEF = "ceramic mug with a blue logo, on a wooden table"


async def test_refine_writes_images_and_a_report(openai_fake, make_settings, tmp_path) -> None:
    scores = iter([5, 7, 6, 6, 4, 7])

    def critic(body):
        return default_critic(body) | {"score": next(scores)}

    openai_fake.critic = critic
    out = tmp_path / "out"
    progress = io.StringIO()
    result = await refine_to_directory(
        make_settings(), BRIEF, out, rounds=3, drafts=2, progress_out=progress
    )
    report = json.loads((out / "report.json").read_text())
    assert report == result.report
    assert report["brief"] == BRIEF and report["images"] == 6 and report["cost_usd"] > 0
    assert report["plan"] == {"rounds": 3, "drafts": 2, "threshold": 8, "max_images": 6}
    assert [r["score"] for r in report["rounds"]] == [7, 6, 7]
    assert report["stop_reason"] == "no_improvement"
    assert report["best"]["round"] == 1 and report["best"]["file"] == "best.jpg"
    for entry in report["rounds"]:
        assert entry["critique"]["revised_prompt"] and entry["kept_draft"] in (1, 2)
        [kept] = [d for d in entry["drafts"] if d["number"] == entry["kept_draft"]]
        assert kept["score"] == entry["score"] == max(d["score"] for d in entry["drafts"])
        for draft in entry["drafts"]:
            image = (out / draft["file"]).read_bytes()
            # A redraw is drawn from the round's prompt; an edit from its instruction.
            assert prompt_of(image) == (draft["instruction"] or entry["prompt"])
        if entry["number"] > 1:  # after round 1: an edit of the best picture and a redraw
            assert sorted(d["kind"] for d in entry["drafts"]) == ["edit", "redraw"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["best.jpg", "report.html", "report.json"]
        + [f"round-0{r}-draft-{d}.jpg" for r in (1, 2, 3) for d in (1, 2)]
    )
    html = (out / "report.html").read_text()
    assert html.count("data:image/jpeg;base64,") == 7  # best + six drafts, embedded
    assert "<script" not in html and "src='http" not in html
    for entry in report["rounds"]:
        assert f"Round {entry['number']} · {entry['score']}/10" in html
    assert "softer studio lighting" in html  # the critique's suggestion
    lines = progress.getvalue().splitlines()  # not a terminal: one line per round
    assert lines[-1].startswith("[####") and "6/6 drafts" in lines[-1]


async def test_refine_from_a_photo_keeps_it_in_the_report(
    openai_fake, make_settings, tmp_path
) -> None:
    out = tmp_path / "photo"
    result = await refine_to_directory(
        make_settings(),
        "on a marble table",
        out,
        photo=product_photo(1200, 900, "HEIF"),
        rounds=1,
        drafts=2,
        progress_out=io.StringIO(),
    )
    assert result.report["photo"] == "reference.jpg" and (out / "reference.jpg").exists()
    assert len(openai_fake.requests_to("edits")) == 2
    assert "Product photo" in (out / "report.html").read_text()


async def test_python_m_bot_refine_as_a_process(openai_fake, tmp_path) -> None:
    env = clean_environment(
        OPENAI_API_KEY=openai_fake.api_key,
        OPENAI_BASE_URL=openai_fake.base_url,
        AUTOPILOT_DRAFTS="2",
    )
    out = tmp_path / "run"
    finished = await run_cli(
        "refine", BRIEF, "--rounds", "2", "--out", str(out), env=env, cwd=tmp_path
    )
    assert finished.returncode == 0, finished.stderr
    assert re.search(r"best: round \d \(\d+/10\)", finished.stdout)
    assert (out / "report.html").exists() and (out / "round-02-draft-2.jpg").exists()
    assert openai_fake.api_key not in finished.stdout + finished.stderr

    bad = await run_cli(
        "refine", BRIEF, "--photo", str(tmp_path / "missing.jpg"), env=env, cwd=tmp_path
    )
    assert bad.returncode == 2 and "cannot read the photo" in bad.stderr
    too_many = await run_cli("refine", BRIEF, "--rounds", "99", env=env, cwd=tmp_path)
    assert too_many.returncode == 2 and "1 to 10 rounds" in too_many.stderr
    # Only the good run paid: round 1's two new pictures, round 2's edit and new picture.
    assert len(openai_fake.requests_to("images")) == 3
    assert len(openai_fake.requests_to("edits")) == 1
