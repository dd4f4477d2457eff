"""What learners and trainers read, in English and French (PEERBOT_LOCALE, or the member's own locale).

A plain catalog: the texts are few, short and reviewed by trainers, so a gettext toolchain would add a
build step and nothing else.
"""

from __future__ import annotations

from typing import Any

LOCALES = ("en", "fr")

CATALOG: dict[str, dict[str, str]] = {
    "prep.post": {
        "en": "📚 *Prepare for “{title}”* — starts {0}.\n{material}\nMark it done when you have prepared (button or ✅).",
        "fr": "📚 *Préparez « {title} »* — début {0}.\n{material}\nIndiquez que c'est fait une fois préparé (bouton ou ✅).",
    },
    "prep.done_button": {"en": "Done", "fr": "C'est fait"},
    "prep.reminder": {
        "en": "⏰ “{title}” starts {0}. You have not marked the preparation done yet:\n{material}",
        "fr": "⏰ « {title} » commence {0}. Vous n'avez pas encore indiqué avoir fait la préparation :\n{material}",
    },
    "checkin.announce": {
        "en": "🟢 *Check-in is open for “{title}”* — starts {0}. Click *Check in* (or react ✅) when you are here.",
        "fr": "🟢 *L'émargement est ouvert pour « {title} »* — début {0}. Cliquez sur *Je suis là* (ou ✅).",
    },
    "checkin.button": {"en": "Check in", "fr": "Je suis là"},
    "breakout.intro": {
        "en": "👋 Welcome to group {number} of “{title}”: {members}.",
        "fr": "👋 Bienvenue dans le groupe {number} de « {title} » : {members}.",
    },
    "breakout.objectives": {"en": "*Objectives*: {objectives}", "fr": "*Objectifs* : {objectives}"},
    "breakout.video": {"en": "Video room: {url}", "fr": "Salle vidéo : {url}"},
    "format.groups": {
        "en": "*How to work*: each of you shares what you prepared (3 min each), then solve the exercise "
        "together; one of you notes the group's takeaways.",
        "fr": "*Déroulé* : chacun partage sa préparation (3 min chacun), puis résolvez l'exercice ensemble ; "
        "une personne note les enseignements du groupe.",
    },
    "format.tutoring": {
        "en": "*How to work*: {tutor} guides, the others explain their reasoning out loud; swap roles halfway.",
        "fr": "*Déroulé* : {tutor} guide, les autres expliquent leur raisonnement à voix haute ; inversez à mi-parcours.",
    },
    "format.review": {
        "en": "*How to work*: review each other's work in turn: one thing that works, one question, one suggestion.",
        "fr": "*Déroulé* : relisez vos travaux à tour de rôle : un point fort, une question, une suggestion.",
    },
    "format.sharing": {
        "en": "*How to work*: each of you shares a practice or a case from your work; the group picks one to adopt.",
        "fr": "*Déroulé* : chacun partage une pratique ou un cas vécu ; le groupe en retient une à adopter.",
    },
    "ground_rules": {
        "en": "*Ground rules*: every question is welcome · speak in turn and listen fully · critique ideas, "
        "never people · what is said here stays here · ask the trainer any time with `/peer raise`.",
        "fr": "*Règles du groupe* : toutes les questions sont bienvenues · parlez à tour de rôle et écoutez · "
        "critiquez les idées, jamais les personnes · ce qui se dit ici reste ici · appelez le formateur avec `/peer raise`.",
    },
    "wrapup.prompt": {
        "en": "⏳ Time to wrap up: share your group's three key takeaways with *Share takeaways*.",
        "fr": "⏳ C'est l'heure de conclure : partagez les trois enseignements clés du groupe avec *Partager*.",
    },
    "wrapup.button": {"en": "Share takeaways", "fr": "Partager"},
    "survey.invite": {
        "en": "📝 Thank you for taking part in “{title}”. Two minutes for 6 questions? Your answers improve the next sessions.",
        "fr": "📝 Merci d'avoir participé à « {title} ». Deux minutes pour 6 questions ? Vos réponses améliorent les prochaines sessions.",
    },
    "survey.reminder": {
        "en": "📝 A gentle reminder: your feedback on “{title}” is still open for a few days.",
        "fr": "📝 Petit rappel : votre avis sur « {title} » est encore attendu pendant quelques jours.",
    },
    "survey.button": {"en": "Answer", "fr": "Répondre"},
    "survey.thanks": {"en": "Thank you, your answers are recorded.", "fr": "Merci, vos réponses sont enregistrées."},
    "quiz.invite": {
        "en": "🧠 {weeks} weeks after “{title}”: a short quiz to see what stuck ({count} questions).",
        "fr": "🧠 {weeks} semaines après « {title} » : un court quiz pour voir ce qui est resté ({count} questions).",
    },
    "quiz.score": {"en": "Your score: {score}/{total}.", "fr": "Votre score : {score}/{total}."},
    "q.clarity": {"en": "The exchanges in my group were clear.", "fr": "Les échanges dans mon groupe étaient clairs."},
    "q.interactions": {
        "en": "The quality of the interactions helped me learn.",
        "fr": "La qualité des interactions m'a aidé à apprendre.",
    },
    "q.progress": {
        "en": "I progressed on the session's objectives.",
        "fr": "J'ai progressé sur les objectifs de la session.",
    },
    "q.safety": {
        "en": "I felt safe to voice my doubts and questions.",
        "fr": "Je me suis senti(e) libre d'exprimer mes doutes et questions.",
    },
    "q.focus": {"en": "The group stayed on the objectives.", "fr": "Le groupe est resté centré sur les objectifs."},
    "q.open": {
        "en": "What would you keep or change for the next session?",
        "fr": "Que garderiez-vous ou changeriez-vous pour la prochaine session ?",
    },
    "likert.low": {"en": "Strongly disagree", "fr": "Pas du tout d'accord"},
    "likert.high": {"en": "Strongly agree", "fr": "Tout à fait d'accord"},
    "survey.title": {"en": "Session feedback", "fr": "Avis sur la session"},
    "quiz.title": {"en": "Retention quiz", "fr": "Quiz de rétention"},
}


def t(locale: str, key: str, *times: Any, **values: Any) -> str:
    """The text for `key` in `locale` (English if missing); `{0}`… stay for the adapter's timestamps."""
    texts = CATALOG[key]
    template = texts.get(locale) or texts["en"]
    placeholders = tuple(f"{{{i}}}" for i in range(len(times))) if times else ()
    return template.format(*placeholders, **values)
