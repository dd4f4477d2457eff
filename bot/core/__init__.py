"""The service layer: every use case of a peer-learning session, platform-neutral.

Adapters call `Core` (the `bot.inbound.CoreAPI` contract) with an `Actor` and get a neutral `Reply` back.
Inside, one class per concern, each built with a `Context` (database, platforms, settings, clock,
scheduler) and the services it calls, named in its constructor:

- `views.Views` — what people see (App Home, autocomplete, the session summary);
- `groups.Groups` — formation, trainer control, late joiners, breakouts;
- `pairs.Pairs` — a cohort's keep-apart and keep-together rules;
- `attendance.Attendance(groups)` — prep, check-in, absence;
- `outbox.Outbox(views)` — the DMs that must arrive once (the trainers' summary included);
- `forms.Forms` — questionnaires and takeaways;
- `templates.Templates` — a cohort's own post-session questionnaire (edit form, YAML import);
- `followups.FollowUps(outbox)` — the behavioural follow-up, N weeks after a session;
- `formats.Formats(outbox)` — the sharing timer, tutoring agreements and peer review;
- `timeline.Timeline(groups, outbox, views, followups, formats)` — the session's steps;
- `exports.Exports` — `/peer export` and the report's chart uploaded to a trainer's DM, `/peer note`;
- `commands.Commands(timeline, views, exports)` — the other `/peer` commands;
- `facade.Core` — builds them, routes commands, clicks, forms and reactions.

`rules` holds the session's rules as pure code and `queries` the lookups several services share. Each use
case is one transaction; platform calls happen outside it (they can take seconds under rate limits).
"""

from bot.core.context import Context, SchedulerPort
from bot.core.facade import Core
from bot.core.timeline import StepResult
from bot.inbound import Actor

__all__ = ["Actor", "Context", "Core", "SchedulerPort", "StepResult"]
