"""`/peer export`, `/peer note` and `/peer report` through the real discord.py client: the files reach the trainer's
DM as attachments (multipart `payload_json` + `files[0]`) in the emulator; an export is deferred, never holding the
interaction's 3-second answer."""

from __future__ import annotations

import io
import zipfile

from PIL import Image

from tests.e2e.test_discord_app import DiscordWorld, plan, world
from tests.integration.conftest import pdf_text

__all__ = ["world"]


async def test_export_and_report_arrive_as_attachments_in_the_trainers_dm(world: DiscordWorld) -> None:
    w = world
    await plan(w)
    assert "Note saved" in await w.command(w.trainer, ["note"], session="s1", text='Try pairs: "fours" were slow.')

    w.runner.client.defer_after = 0.0  # as if the export took longer than Discord's 3 s
    inter = await w.emu.slash(w.trainer, "peer", ["export"], {"target": "s1", "format": "pdf"}, within=10)
    assert inter.callback_type == 5  # deferred at once
    assert "s1-evidence.pdf" in (await inter.wait_message(within=30)).content
    dm = w.emu.dm_channels[w.trainer.id]
    [(name, data)] = w.emu.attachment_bytes(w.emu.messages_in(dm)[-1])
    assert name == "s1-evidence.pdf" and "Fractions" in pdf_text(data)

    assert "c1-audit-pack.zip" in await w.command(w.trainer, ["export"], target="c1", format="audit")
    [(name, data)] = w.emu.attachment_bytes(w.emu.messages_in(dm)[-1])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "Try pairs" in archive.read("index.html").decode()

    text = await w.command(w.trainer, ["report"], session="s1")
    assert "Try pairs" in text and "chart is in your DMs" in text
    last = w.emu.messages_in(dm)[-1]
    [(name, data)] = w.emu.attachment_bytes(last)
    assert name == "s1-chart.png" and Image.open(io.BytesIO(data)).size == (900, 750)
    assert "Try pairs" in last.content  # the summary comes with the chart


async def test_a_file_over_the_bots_limit_and_a_learner_are_refused_politely(world: DiscordWorld) -> None:
    w = world
    await plan(w)
    w.runner.platform.max_upload = 1000
    text = await w.command(w.trainer, ["export"], target="c1", format="xlsx")
    assert "more than this chat platform lets me upload" in text and "peerbot export c1 xlsx" in text, text
    assert "Only trainers" in await w.command(w.learners[0], ["export"], target="c1")
    assert "Only trainers" in await w.command(w.learners[0], ["note"], session="s1", text="hello")
    dm = w.emu.dm_channels.get(w.trainer.id)
    assert dm is None or all(not m.attachments for m in w.emu.messages_in(dm))
