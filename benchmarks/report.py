"""The printed table: one row per ratio, then the other figures, each against its target if it has one."""

#: name -> (comparison, bound) for the numbers the issue sets a target for.
TARGETS = {
    "train_vae_vs_keras_io": (">=", 1.2),
    "encode_1_p50_ms": ("<=", 5.0),
    "keraszoo_list_s": ("<", 1.0),
    "pythae_vae_vs_keraszoo": (">=", 1.5),
}


def short(value):
    """A table cell: three significant digits or so (the JSON keeps every digit)."""
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _check(name, value):
    if name not in TARGETS:
        return "", ""
    op, bound = TARGETS[name]
    met = {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
    return f"{op} {bound:g}", "met" if met else "NOT met"


def table_rows(ratios, figures, skipped):
    """One row per ratio (keraszoo's figure, the reference's, their ratio), then the other figures."""
    rows = []
    in_ratios = set()
    for name, r in ratios.items():
        a, b = figures[r["numerator"]], figures[r["denominator"]]
        in_ratios.update((r["numerator"], r["denominator"]))
        target, met = _check(name, r["value"])
        rows.append((name, short(a["value"]), a["unit"], short(b["value"]), f"{r['value']:.2f}", target, met))
    for name, f in figures.items():
        if name in in_ratios:
            continue
        target, met = _check(name, f["value"])
        rows.append((name, short(f["value"]), f["unit"], "", "", target, met))
        if "imports_tensorflow" in f:
            rows.append(("keraszoo_list_imports_tensorflow", "yes" if f["imports_tensorflow"] else "no", "", "", "",
                         "no", "NOT met" if f["imports_tensorflow"] else "met"))
    for name in skipped:  # why: in the JSON's "skipped"
        rows.append((name, "skipped", "", "", "", _check(name, 0.0)[0], "not measured"))
    return rows


def format_table(rows):
    header = ("name", "value", "unit", "reference", "ratio", "target", "met")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
