"""`/peer export`, `/peer note` and `/peer report` through the real slack-bolt app: the files reach the trainer's DM
by files.getUploadURLExternal, the upload URL and files.completeUploadExternal in the emulator; an export never
holds the ack (`ack_budget=0`: the ack says "working on it" and the answer follows by response_url)."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

from PIL import Image

from tests.conftest import T0
from tests.e2e.test_slack_app import SlackWorld, close_world, make_world, plan_session
from tests.integration.conftest import pdf_text


def trainer_dm(w: SlackWorld) -> str:
    return next(c.id for c in w.emu.channels.values() if c.is_im and c.im_user == w.trainer)


async def ran_session(w: SlackWorld) -> None:
    await plan_session(w)
    await w.command(w.trainer, "session start s1")
    w.clock.set(T0 + timedelta(hours=2))
    await w.command(w.trainer, "session end s1")


async def test_export_and_report_upload_to_the_trainers_dm(tmp_path: Path) -> None:
    w = await make_world(tmp_path, ack_budget=0.0)
    try:
        await ran_session(w)
        ack, form = await w.command(w.trainer, 'note s1 "Pairs worked better than fours."')
        assert "Note saved" in w.final_text(ack, form)

        resp, form = await w.driver.slash_command(w.trainer, "export s1 pdf", channel_id=w.general)
        assert resp.status == 200 and "Working on" in resp.json()["text"]
        await w.runner.bot.drain()
        assert "s1-evidence.pdf" in w.final_text({}, form)
        dm = trainer_dm(w)
        [sheet] = w.emu.files_in(dm)
        assert sheet.name == "s1-evidence.pdf" and sheet.data is not None
        assert "Fractions" in pdf_text(sheet.data)
        assert "Export of `s1`" in w.emu.history(dm)[-1].text

        ack, form = await w.command(w.trainer, "export c1 audit")
        assert "c1-audit-pack.zip" in w.final_text(ack, form)
        pack = w.emu.files_in(dm)[-1]
        assert pack.data is not None
        with zipfile.ZipFile(io.BytesIO(pack.data)) as archive:
            assert "Pairs worked better than fours." in archive.read("index.html").decode()

        ack, form = await w.command(w.trainer, "report s1")
        text = w.final_text(ack, form)
        assert "Attendance:" in text and "Pairs worked better" in text and "chart is in your DMs" in text
        chart = w.emu.files_in(dm)[-1]
        assert chart.name == "s1-chart.png" and chart.data is not None
        assert Image.open(io.BytesIO(chart.data)).size == (900, 750)
        assert "Attendance:" in w.emu.history(dm)[-1].text  # the summary travels with the chart
        assert {c.method for c in w.emu.calls if c.error} == set()
    finally:
        await close_world(w)


async def test_a_file_over_the_workspace_limit_gets_a_polite_answer(tmp_path: Path) -> None:
    w = await make_world(tmp_path)
    try:
        await ran_session(w)
        w.emu.max_file_size = 2000
        ack, form = await w.command(w.trainer, "export c1 xlsx")
        text = w.final_text(ack, form)
        assert "more than this chat platform lets me upload" in text and "`peerbot export c1 xlsx`" in text, text
        assert w.emu.files_in(trainer_dm(w)) == []
        ack, form = await w.command(w.learners[0], "export c1")
        assert "Only trainers" in w.final_text(ack, form)
    finally:
        await close_world(w)
