"""Re-rank video → music suggestions by the learned reward (``video.match --prefs``).

The newest reward model (:mod:`engines.feedback.reward`) scores each suggested track from its
audio features; the rewards are standardised over the suggestions and added to the matcher's
score, scaled to the spread of those scores::

    score' = score + W_PREF * max(ptp(score), 0.05) * z(reward)

so a track your votes favour by one standard deviation gains half the score range. Tracks whose
rank changed say so in their rationale. The session is updated too, so ``video export SESSION
RANK`` exports what was shown.
"""

from __future__ import annotations

from typing import Any

import numpy as np

W_PREF = 0.5


def available(home: Any) -> bool:
    from engines.feedback.reward import versions

    return bool(versions(home))


def apply_preferences(home: Any, res: Any, *, enabled: bool | None = None) -> Any:
    """Reorder ``res.suggestions`` (a video2music MatchResult) in place; returns ``res``.

    ``enabled=None``: on when a reward model exists. Nothing changes with fewer than two
    suggestions or when every suggestion gets the same reward.
    """
    if enabled is False or (enabled is None and not available(home)):
        return res
    from engines.core.errors import ModelError
    from engines.feedback.features import FeatureCache
    from engines.feedback.reward import latest

    model = latest(home)
    if model is None:
        if enabled:
            raise ModelError("no reward model yet: train one with `studio prefs train-reward`")
        return res
    sugg = list(res.suggestions)
    if len(sugg) < 2:
        return res
    cache = FeatureCache(home)
    x = np.stack([cache.files(audio=s.path) for s in sugg])
    r = model.score(x)
    sd = float(r.std())
    if sd < 1e-9:
        return res
    z = (r - r.mean()) / sd
    score = np.array([s.score for s in sugg], np.float64)
    spread = max(float(np.ptp(score)), 0.05)
    new = score + W_PREF * spread * z
    order = sorted(range(len(sugg)), key=lambda i: (-new[i], i))
    out = []
    for k, i in enumerate(order):
        s = sugg[i]
        old_rank = s.rank
        s.rank = k + 1
        s.score = round(float(new[i]), 4)
        if s.rank != old_rank:
            way = "up" if s.rank < old_rank else "down"
            s.rationale = (f"{s.rationale}; your votes moved it {way} from #{old_rank} (learned preference "
                           f"{z[i]:+.1f} sd, reward model {model.version})")
        out.append(s)
    res.suggestions = out
    if [s.track_id for s in out] != [sugg[i].track_id for i in range(len(sugg))]:
        res.changed = "; ".join(x for x in (res.changed, f"re-ranked by your preferences ({model.version})") if x)
    _update_session(home, res)
    return res


def _update_session(home: Any, res: Any) -> None:
    from engines.video2music import sessions as S

    try:
        st = S.load_session(home, res.session_id)
    except Exception:  # the session is the engine's; a missing one is not ours to fail on
        return
    entry = st["turns"][-1] if st.get("turns") else st.get("initial")
    if entry is None:
        return
    entry["results"] = [s.to_dict() for s in res.suggestions]
    entry["changed"] = res.changed
    st["shown_ids"] = [s.track_id for s in res.suggestions]
    S.save_session(home, st)
