"""The pairwise comparisons of a study's settings on the test reconstruction term, as a report table.

The discussion names the best setting and the trend along a swept number; a reader comparing two settings that are
neither (two depths of a network, two variants) needs every pair. Each cell says whether the row's setting is
lower (``<``) or higher (``>``) than the column's across seeds, by the rules of :func:`keraszoo.experiments.stats.compare`
(a paired t-test over the common seeds at p < 0.05, or 95 % intervals apart; a deterministic reference against the
other's interval), and ``·`` where no difference is detected. The tests are not corrected for multiple comparisons:
the table says how many false detections chance alone would give.
"""

from __future__ import annotations

from keraszoo.experiments import stats

#: a panel is tabled when it has this many settings (fewer: the discussion's sentences say it all; more: unreadable,
#: and the panel is tabled model by model instead: the latent study's AE, VAE, PCA and linear AE at six sizes each)
MIN_SETTINGS, MAX_SETTINGS = 3, 12


def _cell(comparison) -> str:
    if not comparison.detected:
        return "·"
    return "<" if comparison.sign < 0 else ">"


def pairwise_tables(study) -> list:
    """Markdown lines: per likelihood panel of ``study`` with 3 to 12 settings measured with seeds (more: per model of
    the panel), the matrix of pairwise comparisons of the test ``reconstruction_loss`` (lower is better); ``[]`` when
    no panel qualifies."""
    lines = []
    if study.one_class:  # settings of different normal classes: their test losses measure different tasks
        return lines

    def value_of(r):
        return study.test_value(r, "reconstruction_loss")

    for likelihood, settings in study.panels(study.settings()).items():
        settings = [s for s in settings if s.interval(value_of).n]
        groups = {likelihood: settings}
        if len(settings) > MAX_SETTINGS:  # model by model
            groups = {}
            for s in settings:
                groups.setdefault(f"{likelihood}; {s.title or s.runs[0]['variant']}", []).append(s)
        lines += [line for title, group in groups.items() for line in _table(title, group, value_of)]
    return lines


def _table(title, settings, value_of) -> list:
    """The markdown lines of one comparison matrix (``[]`` when ``settings`` do not qualify)."""
    if not MIN_SETTINGS <= len(settings) <= MAX_SETTINGS or not any(s.n >= 2 and not s.exact for s in settings):
        return []
    pairs = len(settings) * (len(settings) - 1) // 2
    cells = [["–"] * len(settings) for _ in settings]
    detected = 0
    for i, a in enumerate(settings):  # each pair once; the mirrored cell has the opposite sign
        for j in range(i + 1, len(settings)):
            b = settings[j]
            c = stats.compare(a.values(value_of), b.values(value_of), a.exact, b.exact)
            detected += c.detected
            cells[i][j] = _cell(c)
            cells[j][i] = {"<": ">", ">": "<"}.get(cells[i][j], cells[i][j])
    rows = [[f"{i + 1}. {a.label}", a.interval(value_of).text(), *cells[i]] for i, a in enumerate(settings)]
    return [f"### Pairwise comparisons: test reconstruction_loss ({title})", "",
            f"Row against column, across seeds: **<** the row's setting is lower (better), **>** higher, **·** no "
            f"difference detected (a paired t-test over the common seeds at p < {stats.ALPHA:g}, or 95 % "
            f"intervals apart). {detected} of the {pairs} pairs differ; the tests are not corrected for multiple "
            f"comparisons, so about {stats.ALPHA * pairs:.2g} of them could be chance.", "",
            "| setting | mean ± 95 % | " + " | ".join(str(k + 1) for k in range(len(settings))) + " |",
            "|---|---|" + "---|" * len(settings),
            *("| " + " | ".join(row) + " |" for row in rows), ""]
