"""Who reads what language: PEERBOT_LOCALE, the actor's own locale (Discord), and the member's for DMs."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from adapters.local.driver import LocalUser
from adapters.local.platform import LocalPlatform
from bot.app import build
from bot.clock import FakeClock
from bot.core import Actor
from bot.core.rules import CHECKIN_OPENS
from bot.messages import Form, Reply
from storage.models import Member, PeerSession
from tests.conftest import T0, World, make_settings

PLAN = 'session plan py "Tests avec pytest" 2026-03-04 14:00 1h30m prep="Lire le guide" objectives="Fixtures"'


@pytest.fixture
async def french(database_url: str) -> AsyncIterator[World]:
    """The `world` fixture on an instance configured with PEERBOT_LOCALE=fr."""
    platform = LocalPlatform()
    clock = FakeClock(T0)
    settings = make_settings(database_url, PEERBOT_LOCALE="fr")
    app = await build(settings, {"local": platform}, clock=clock, with_scheduler=False)
    trainer = LocalUser(app.core, platform, "T1", "Formatrice", trainer=True)
    learners = [LocalUser(app.core, platform, f"L{i}", f"Apprenant {i}") for i in range(1, 7)]
    channel = platform.add_channel("cohorte", ["T1", *(u.user_id for u in learners)])
    yield World(app, platform, clock, trainer, learners, channel.id)
    await app.close()


def speaking(user: LocalUser, locale: str) -> Actor:
    """The actor a Discord interaction from `user` would give with the client in `locale`."""
    return dataclasses.replace(user.actor, locale=locale)


async def plan(world: World) -> str:
    assert (await world.trainer.command(f"cohort create py <#{world.channel_id}|cohorte>")).ok
    mentions = " ".join(f"<@{u.user_id}>={1 + i % 5}" for i, u in enumerate(world.learners))
    assert (await world.trainer.command(f"cohort add py {mentions}")).ok
    reply = await world.trainer.command(PLAN)
    assert reply.ok, reply.text
    return reply.extra["session"]


async def starts_at(world: World, short: str) -> PeerSession:
    async with world.app.db.transaction() as tx:
        return (await tx.exec(select(PeerSession).where(PeerSession.short_id == short))).one()


async def member(world: World, user_id: str) -> Member:
    async with world.app.db.transaction() as tx:
        return (await tx.exec(select(Member).where(Member.user_id == user_id))).one()


async def test_french_instance_answers_commands_in_french(french: World) -> None:
    created = await french.trainer.command(f"cohort create py <#{french.channel_id}|cohorte>")
    assert created.text == (
        f"Cohorte `py` créée ; vous en êtes le formateur. Les annonces seront publiées dans <#{french.channel_id}>.\n"
        "Ensuite : `/peer cohort add py @apprenant=3 ...`"
    )
    added = await french.trainer.command("cohort add py <@L1>=2 <@L2>")
    assert added.text == "Cohorte `py` : 2 ajout(s), 0 niveau(x) mis à jour."
    planned = await french.trainer.command(PLAN)
    assert planned.text.startswith(
        "Session `s1` planifiée : « Tests avec pytest » pour la cohorte `py`, 2026-03-04 14:00"
    )
    shown = await french.trainer.command("session show s1")
    assert "état : *planifiée*" in shown.text and "Objectifs : Fixtures" in shown.text
    assert (await french.trainer.command("help")).text.startswith("*Commandes de peerbot*\n_Formateurs_")


async def test_french_errors_carry_french_hints_and_usage(french: World) -> None:
    cases = {
        "cohort show nope": (
            "Il n'y a pas de cohorte nommée `nope` ici.\n"
            "Créez-la avec `/peer cohort create nope`, ou vérifiez le nom avec `/peer cohort show`."
        ),
        "cohort add py bob": (
            "`bob` n'est pas une mention ; mentionnez les personnes avec @.\n"
            "Syntaxe : `/peer cohort add <cohorte> <@personne>[=<niveau 1-5>] ...`"
        ),
        "frobnicate": "Je ne connais pas la commande `frobnicate`.\nTapez `/peer help` pour voir ce que je sais faire.",
        "session fly s1": (
            "`session fly s1` n'est pas une commande `session`.\n"
            "Essayez l'une de ces commandes : plan, show, start, end, cancel. Voir `/peer help`."
        ),
    }
    for text, expected in cases.items():
        reply = await french.trainer.command(text)
        assert (reply.ok, reply.text) == (False, expected)
    learner = await french.learners[0].command("session start s1")
    assert learner.text == (
        "Seuls les formateurs peuvent utiliser `/peer session start`.\n"
        "Demandez à votre formateur, ou tapez `/peer help` pour voir vos commandes."
    )
    stale = await french.learners[0].click("nothing-here")
    assert (stale.ok, stale.text) == (False, "Ce bouton n'est plus actif.")


async def test_french_learners_read_posts_dms_forms_and_their_data_in_french(french: World) -> None:
    short = await plan(french)
    start = (await starts_at(french, short)).starts_at
    await french.advance(start - timedelta(days=1))
    prep = french.platform.posts_in(french.channel_id)[-1].message
    assert prep.text == "📚 *Préparez « Tests avec pytest »* — début {0}."
    assert prep.buttons[0].label == "C'est fait"
    assert (await french.learners[0].click(f"prep:done:{short}")).text == "Préparation enregistrée, merci !"

    await french.advance(start - CHECKIN_OPENS)
    announce = french.platform.posts_in(french.channel_id)[-1].message
    assert announce.buttons[0].label == "Je suis là"
    french.clock.set(start)
    for learner in french.learners[1:4]:
        assert (await learner.click(f"checkin:in:{short}")).text == "Présence enregistrée pour « Tests avec pytest »."
    french.clock.set(start + timedelta(minutes=12))
    late = await french.learners[0].click(f"checkin:in:{short}")
    assert late.text == "Présence enregistrée pour « Tests avec pytest » (en retard)."
    started = await french.advance(start + timedelta(minutes=13))
    assert "start" in started
    breakout = french.platform.breakouts()[0]
    intro = french.platform.posts_in(breakout.id)[0].message
    assert intro.text.startswith("👋 Bienvenue dans le groupe 1 de « Tests avec pytest »")
    assert any(section.text.startswith("*Règles du groupe* :") for section in intro.sections)

    await french.advance(start + timedelta(minutes=90))
    invite = french.platform.dms_to("L1")[-1].message
    assert invite.text.startswith("📝 Merci d'avoir participé à « Tests avec pytest ».")
    form = await french.learners[0].open_form(french.learners[0].dm_button("survey:open:"))
    assert (form.title, form.submit_label) == ("Avis sur la session", "Envoyer")
    assert form.fields[4].label == "Le groupe est resté centré sur les objectifs."
    bad = await french.learners[0].submit(form, {"clarity": "9"})
    assert bad.text == "« Les échanges dans mon groupe étaient clairs. » attend une note de 1 à 5, pas `9`."
    summary = next(dm for dm in french.platform.dms_to("T1") if dm.message.text.startswith("Synthèse de"))
    assert "Inscrits 6 · préparés 1 · présents 4 (en retard 1)" in summary.message.sections[0].text

    second = french.learners[1]
    answers = {"clarity": "4", "interactions": "5", "progress": "4", "safety": "5", "focus": "3", "open": "Bien"}
    thanks = await second.submit(await second.open_form(second.dm_button("survey:open:")), answers)
    assert thanks.text == "Merci, vos réponses sont enregistrées."
    report = await french.trainer.command(f"report {short}")
    assert "Présence : 4/6 présent(s) (1 en retard, 0 excusé(s))" in report.text
    assert "Avis : 1 réponse(s) ; moyennes (1–5) : clarté 4,0, interactions 5,0, progression 4,0," in report.text
    assert "  « Bien »" in report.text
    assert (await french.learners[0].command("mydata")).text == (
        "Je vous ai envoyé en message privé tout ce que je conserve à votre sujet."
    )
    mine = french.platform.dms_to("L1")[-1].message.text
    assert mine.startswith("*Ce que peerbot conserve à votre sujet* (Apprenant 1, identifiant local L1)")
    assert "• cohorte `py` : apprenant, niveau 1" in mine and "• session `s1` : en retard le 2026-03-04" in mine


async def test_english_instance_is_unchanged(world: World) -> None:
    created = await world.trainer.command("cohort create py")
    assert created.text == (
        "Cohort `py` created; you are its trainer. Announcements will be sent by DM.\n"
        "Next: `/peer cohort add py @learner=3 ...`"
    )
    missing = await world.trainer.command("session show s9")
    assert missing.text == (
        "There is no session `s9` here.\nSession ids are shown when a session is planned, and in `/peer session show`."
    )
    bad = await world.trainer.command("cohort import py general")
    assert bad.text == (
        "`general` is not a channel; mention it with #.\nUsage: `/peer cohort import <cohort> <#channel> [level]`"
    )


async def test_a_french_discord_client_gets_french_on_an_english_instance(world: World) -> None:
    trainer = speaking(world.trainer, "fr")
    reply: Reply = await world.core.handle_command(trainer, "cohort show nope")
    assert reply.text.startswith("Il n'y a pas de cohorte nommée `nope` ici.")
    assert (await world.core.handle_command(trainer, "cohort create py")).text.startswith("Cohorte `py` créée")
    assert (await world.trainer.command("cohort show nope")).text.startswith("There is no cohort named")
    assert (await member(world, "T1")).locale == "fr"


async def test_dms_follow_the_member_locale_and_unknown_locales_fall_back(world: World) -> None:
    assert (await world.trainer.command("cohort create py")).ok  # no channel: announcements by DM
    assert (await world.trainer.command("cohort add py <@L1> <@L2> <@L3>")).ok
    reply = await world.trainer.command('session plan py "Git" 2026-03-04 14:00 1h prep="Chapitre 1"')
    short = reply.extra["session"]
    other = await world.core.handle_command(speaking(world.learners[1], "de"), "checkin")
    assert other.text.startswith("Check-in for `s1` opens 15 minutes before the start")  # German: the instance's
    first = await world.core.handle_command(speaking(world.learners[0], "fr"), "checkin")
    assert first.text.startswith("L'émargement de `s1` ouvre 15 minutes avant le début")
    assert ((await member(world, "L1")).locale, (await member(world, "L2")).locale) == ("fr", "")

    start = (await starts_at(world, short)).starts_at
    await world.advance(start - timedelta(days=1))
    assert world.platform.dms_to("L1")[-1].message.text == "📚 *Préparez « Git »* — début {0}."
    assert world.platform.dms_to("L2")[-1].message.text == "📚 *Prepare for “Git”* — starts {0}."
    world.clock.set(start)
    for learner in world.learners[:3]:
        assert (await learner.click(f"checkin:in:{short}")).ok
    await world.advance(start + timedelta(hours=1))
    assert world.platform.dms_to("L1")[-1].message.text.startswith("📝 Merci d'avoir participé à « Git ».")
    assert world.platform.dms_to("L2")[-1].message.text.startswith("📝 Thank you for taking part in “Git”.")
    l1 = speaking(world.learners[0], "fr")
    form = await world.core.form_for(l1, world.learners[0].dm_button("survey:open:"))
    assert isinstance(form, Form) and form.title == "Avis sur la session"
    english = await world.core.form_for(world.learners[0].actor, world.learners[0].dm_button("survey:open:"))
    assert isinstance(english, Form) and english.title == "Session feedback"  # a reply: the actor's locale only
    incomplete = await world.core.handle_form(l1, form.form_id, {"clarity": "3", "open": "x"})
    assert incomplete.text == (
        "Merci de répondre à toutes les questions notées ; il manque : "
        "« La qualité des interactions m'a aidé(e) à apprendre. »."
    )


async def test_french_instance_answers_pair_rules_in_french(french: World) -> None:
    short = await plan(french)
    await french.trainer.command(f"group show {short}")
    apart = await french.trainer.command("cohort apart py <@L2> <@L1>")
    assert apart.text.startswith("<@L2> et <@L1> seront tenus séparés dans les groupes de la cohorte `py`.")
    replaced = await french.trainer.command("cohort together py <@L1> <@L2>")
    assert replaced.text == (
        "<@L1> et <@L2> étaient tenus séparés dans la cohorte `py` ; cette règle est remplacée : ils seront "
        "désormais gardés ensemble chaque fois que la répartition le permet."
    )
    assert (await french.trainer.command("cohort apart py <@L3> <@L4>")).ok
    shown = await french.trainer.command("cohort show py")
    assert "*Règles de binômes*\n• <@L3> et <@L4> : tenus séparés\n• <@L1> et <@L2> : gardés ensemble" in shown.text
    groups = await french.trainer.command(f"group reshuffle {short}")
    group_of = {line.split(". ")[0]: line for line in groups.text.splitlines() if "<@L3>" in line or "<@L4>" in line}
    assert len(group_of) == 2
    target = next(number for number, line in group_of.items() if "<@L4>" in line)
    refused = await french.trainer.command(f"group move {short} <@L3> {target}")
    assert (refused.ok, refused.text) == (
        False,
        "<@L3> et <@L4> sont tenus séparés dans la cohorte `py` : je ne les mettrai pas dans le même groupe. "
        "Rien n'a changé.\nChoisissez un autre groupe, ou levez d'abord la règle avec "
        "`/peer cohort unpair py <@L3> <@L4>`.",
    )
    errors = {
        "cohort apart py <@L1> <@L1>": (
            "Mentionnez deux personnes différentes : une personne ne peut pas former un binôme avec elle-même.\n"
            "Syntaxe : `/peer cohort apart <cohorte> <@personne> <@personne>`"
        ),
        "cohort together py <@L1> <@T1>": (
            "<@T1> n'est pas apprenant de la cohorte `py`. Rien n'a changé.\n"
            "Inscrivez d'abord la personne avec `/peer cohort add py <@T1>`."
        ),
        "cohort unpair py <@L1> <@L5>": (
            "<@L1> et <@L5> n'ont pas de règle de binôme dans la cohorte `py`. Rien n'a changé.\n"
            "Consultez les règles de la cohorte avec `/peer cohort show py`."
        ),
    }
    for text, expected in errors.items():
        reply = await french.trainer.command(text)
        assert (reply.ok, reply.text) == (False, expected)
    lifted = await french.trainer.command("cohort unpair py <@L4> <@L3>")
    assert lifted.text == "<@L4> et <@L3> ne sont plus tenus séparés dans la cohorte `py`."
