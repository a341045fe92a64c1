"""Tables and plots for people: what a space file means, what a search found."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import save_figure
from gcsearch.objectives import OBJECTIVES, costs
from gcsearch.pareto import TrialRecord, trained
from gcsearch.space import SearchSpace


def si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f} {unit}"
    return f"{n:g}"


def front_table(front: Sequence[TrialRecord], marks: dict[int, str] | None = None) -> str:
    """The Pareto front as a fixed-width table, best accuracy first; ``marks`` (``rundir.baseline_marks``): each
    point against the baseline, so that a difference within the run's noise is not read as a ranking."""
    marks = marks or {}
    timed = any(r.latency is not None for r in front)  # a latency column where latency was measured
    lat = f"  {'latency ms':>10}" if timed else ""
    lines = [f"{'trial':>5}  {'accuracy':>8}  {'vs baseline':>13}  {'MACs':>11}{lat}  {'params':>9}  configuration"]
    for r in front:
        acc = f"{r.accuracy:.4f}" if r.accuracy is not None else "-"
        mark = marks.get(r.number, "")
        ms = (f"  {r.latency:>10.3f}" if r.latency is not None else f"  {'-':>10}") if timed else ""
        lines.append(f"{r.number:>5}  {acc:>8}  {mark:>13}  {si(r.macs):>11}{ms}  {r.params:>9,d}  {r.arch.label()}")
    return "\n".join(lines)


def noise_note(space: SearchSpace, records: Sequence[TrialRecord]) -> str:
    """One line under the front: what "within noise" means in this run."""
    from gcsearch.search.rundir import reference_noise

    noise = reference_noise(space, records)
    if noise.pairs < 2:
        return ("vs baseline: noise unknown (fewer than 2 seeds of the reference trials; search.reference_seeds "
                "sets them): the accuracies above are one training each, not a ranking")  # fmt: skip
    return (f"vs baseline: within noise = less than {noise.threshold:.4f} from the baseline at the same seed (95%, "
            f"the paired sd {noise.sd:.4f} of the paper default and the baseline over {noise.pairs} seeds); "
            "`gcsearch confirm` retrains the front with more seeds")  # fmt: skip


def summary(space: SearchSpace, records: Sequence[TrialRecord]) -> str:
    """``gcsearch show``: trials by state, best per objective, time spent, what pruning saved."""
    from gcsearch.search.rundir import pareto_front

    runs = trained(records)
    by_state = {s: sum(r.state == s for r in runs) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    answered = len(records) - len(runs)
    ended = [r for r in runs if r.state in ("COMPLETE", "PRUNED", "FAIL")]  # running trials have not chosen yet
    epochs_run = sum(r.epochs for r in ended)
    epochs_full = len(ended) * space.train.epochs
    saved = 1 - epochs_run / epochs_full if epochs_full else 0.0
    seconds = sum(r.seconds for r in runs)
    complete = [r for r in runs if r.state == "COMPLETE" and r.accuracy is not None]
    lines = [
        f"trials trained: {len(runs)} of a budget of {space.search.trials} ("
        + ", ".join(f"{n} {s.lower()}" for s, n in by_state.items() if n)
        + ")"
        + (f"; {answered} more answered without training (duplicates, over budget)" if answered else ""),
        f"training time: {seconds:.0f} s summed over trials; {epochs_run} of {epochs_full} trial-epochs run by the "
        f"trials that ended: pruning saved {saved:.0%}",
    ]
    if complete:
        best = max(complete, key=lambda r: (r.accuracy, -r.macs))
        cheapest = min(complete, key=lambda r: (r.macs, -(r.accuracy or 0)))
        lines.append(f"best accuracy: {best.accuracy:.4f} (trial {best.number}, {best.arch.label()})")
        lines.append(f"fewest MACs:   {si(cheapest.macs)} (trial {cheapest.number}, {cheapest.arch.label()})")
        timed = [r for r in complete if r.latency is not None]
        if timed:
            fastest = min(timed, key=lambda r: (r.latency, -(r.accuracy or 0)))
            lines.append(f"fastest:       {fastest.latency:.3f} ms (trial {fastest.number}, {fastest.arch.label()})")
        lines.append(f"Pareto front: {len(pareto_front(space, records))} trials")
    fails = [r for r in runs if r.state == "FAIL"]
    lines += [f"failed trial {r.number}: {r.reason}" for r in fails]
    return "\n".join(lines)


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(
    space: SearchSpace, records: Sequence[TrialRecord], out: str, title: str = "", confirmed: Any = None
) -> None:
    """Every COMPLETE trial (MACs, accuracy), PRUNED ones faint at their last accuracy, the front as a
    step line, the baseline and the paper default marked when present, and the confirmed candidates'
    mean over seeds with its 95% interval (``gcsearch confirm``). MACs go on a log axis when they
    span more than 3x; the accuracy axis centres on the COMPLETE trials, counting pruned ones below it."""
    from matplotlib.ticker import FuncFormatter

    from gcsearch.search.rundir import baseline_marks, pareto_front, reference_noise

    plt = _pyplot()
    runs = trained(records)
    # The cost axis: the search's first cost objective (objectives.py), MACs when it has none; a measured one
    # (latency) before a counted one, as what the user deploys against.
    found = costs(space.search.objectives)
    cost = next((c for c in found if OBJECTIVES[c].source == "measurement"), found[0])

    def x(r: TrialRecord) -> float:
        return float(r.objective(cost) or 0.0)

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    pruned = [r for r in runs if r.state == "PRUNED" and r.accuracy is not None]
    done = [r for r in runs if r.state == "COMPLETE" and r.accuracy is not None]
    low = min((r.accuracy or 0.0 for r in done), default=0.0)
    high = max((r.accuracy or 0.0 for r in done), default=1.0)
    floor = max(0.0, low - max(0.05, 2 * (high - low)))
    shown = [r for r in pruned if (r.accuracy or 0.0) >= floor]
    below = len(pruned) - len(shown)
    pruned_label = "pruned (at last epoch)" + (f"; {below} more below the axis" if below else "")
    ax.scatter([x(r) for r in shown], [r.accuracy for r in shown], s=18, c="0.75", label=pruned_label)
    ax.scatter([x(r) for r in done], [r.accuracy for r in done], s=26, c="tab:blue", label="complete")
    front = sorted(pareto_front(space, records), key=x)
    if front:
        ax.step([x(r) for r in front], [r.accuracy for r in front], where="post", c="tab:red", lw=1.5)
        ax.scatter([x(r) for r in front], [r.accuracy for r in front], s=70, facecolors="none",
                   edgecolors="tab:red", label="Pareto front")  # fmt: skip
        for i, r in enumerate(front):  # staggered, so neighbouring labels do not overlap
            ax.annotate(f"#{r.number}", (x(r), r.accuracy or 0), textcoords="offset points",
                        xytext=(8, 9 * (i % 3 - 1)), va="center", fontsize=8, color="tab:red")  # fmt: skip
        # The front points within the run's noise of the baseline: grey crosses, so no one reads them as a ranking.
        noise, marked = reference_noise(space, records), baseline_marks(space, records)
        level = [r for r in front if marked.get(r.number) == "within noise"]
        if level:
            label = f"within noise of the baseline (+-{noise.threshold:.4f}, {noise.pairs} reference seeds)"
            ax.scatter([x(r) for r in level], [r.accuracy for r in level], marker="x", s=60, c="0.35", zorder=6,
                       label=label)  # fmt: skip
    marks = {"baseline (no GC)": ArchConfig(), "paper default": space.reference()}
    for (name, arch), style in zip(marks.items(), (("s", "black"), ("*", "tab:orange")), strict=True):
        hits = [r for r in done if arch is not None and r.arch == arch]
        if hits:
            ax.scatter([x(r) for r in hits], [r.accuracy for r in hits], marker=style[0], s=90, c=style[1],
                       label=name, zorder=5, alpha=0.8)  # fmt: skip
    if confirmed is not None:
        cs = confirmed.candidates
        seeds = max(len(c.accuracies) for c in cs)
        where = {r.number: x(r) for r in runs}
        ax.errorbar([where.get(c.number, c.macs) for c in cs], [c.mean for c in cs], yerr=[c.half_width for c in cs],
                    fmt="D", ms=5, c="tab:green", capsize=3, label=f"confirmed: mean of {seeds} seeds, 95% interval",
                    zorder=6)  # fmt: skip
    macs = [x(r) for r in shown + done] or [1]
    if max(macs) > 3 * min(macs):
        ax.set_xscale("log")
    if cost == "macs":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: si(v).replace(" ", "")))
    ax.set_ylim(floor, high + 0.1 * (high - floor))
    unit = OBJECTIVES[cost].unit
    ax.set_xlabel(f"latency, ms ({_latency_setting(space)})" if cost == "latency" else f"{unit} per image")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{title or Path(space.path).stem}: {len(done)} complete, {len(pruned)} pruned trials")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(fig, out)
    plt.close(fig)


def _latency_setting(space: SearchSpace) -> str:
    lat = space.search.latency
    return f"{lat.device}, batch {lat.batch}, {lat.threads} thread{'s' if lat.threads > 1 else ''}, {lat.dtype}"


def plot_importance(importances: dict[str, float], out: str, title: str) -> None:
    plt = _pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(names) + 1.5), dpi=120)
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance for accuracy (PED-ANOVA, sums to 1)")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, out)
    plt.close(fig)


def importance_table(importances: dict[str, float]) -> str:
    return "\n".join(f"  {name:<9} {value:6.3f}  {'#' * round(40 * value)}" for name, value in importances.items())


def pareto_report(run: str | Path) -> str:
    """`gcsearch pareto RUN`: the front as a table (with the confirmed candidates, if `gcsearch confirm` ran),
    and ``<run>/pareto.png``."""
    from gcsearch.analysis import confirm
    from gcsearch.search import rundir

    run_dir, space, study = rundir.open_run(run)
    records = rundir.records(study)
    front = rundir.pareto_front(space, records)
    if not front:
        raise ConfigError("run", "has no COMPLETE trial yet", str(run_dir))
    parts = [front_table(front, rundir.baseline_marks(space, records)), noise_note(space, records)]
    confirmed = confirm.load(run_dir)
    if confirmed is not None:
        parts += ["", "Confirmed with more seeds (gcsearch confirm):", confirm.table(confirmed)]
    out = run_dir / "pareto.png"
    plot_pareto(space, records, str(out), title=run_dir.name, confirmed=confirmed)
    return "\n".join([*parts, f"wrote {out}"])


def importance_report(run: str | Path) -> str:
    """`gcsearch importance RUN`: which axes mattered for accuracy, and ``<run>/importance.png``."""
    from gcsearch.search import rundir

    run_dir, space, study = rundir.open_run(run)
    importances = rundir.param_importances(study, len(space.grid()))
    out = run_dir / "importance.png"
    plot_importance(importances, str(out), f"{run_dir.name}: what mattered for accuracy")
    return "\n".join(["importance of each axis for accuracy (PED-ANOVA over COMPLETE trials):",
                      importance_table(importances), f"wrote {out}"])  # fmt: skip


def show_report(run: str | Path) -> str:
    """`gcsearch show RUN`."""
    from gcsearch.search import rundir

    run_dir, space, study = rundir.open_run(run)
    return "\n".join([f"{run_dir}: {space.path}", summary(space, rundir.records(study)), *rung_lines(space, run_dir)])


def rung_lines(space: SearchSpace, run_dir: Path) -> list[str]:
    """What the pruner decided at each rung and why: each rung's fidelity (its score against the final one over
    the run's completed configurations), whether it may cut, and how many trials it stopped."""
    import optuna

    from gcsearch.search import rundir
    from gcsearch.search.pruning import FIDELITY_TRIALS, MIN_FIDELITY, rung_fidelity

    if space.search.pruner == "none":
        return []
    try:
        twin = optuna.load_study(study_name=rundir.TWIN_STUDY, storage=rundir.storage(run_dir))
    except KeyError:  # a run from before twin studies, or one that trained nothing yet
        return []
    main = rundir.load_main_study(run_dir)
    pruned_at: dict[int, int] = {}
    for t in main.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)):
        if rundir.was_trained(t):
            done = int(t.user_attrs.get("epochs", 0))
            pruned_at[done] = pruned_at.get(done, 0) + 1
    s = space.search.pruner_settings
    lines = ["pruning, by rung (a rung cuts only once the run's completed configurations show it ranks the final "
             "accuracy):"]  # fmt: skip
    for step in range(1, space.train.epochs):
        f = rung_fidelity(twin, step, space.train.epochs, float(s.get("min_fidelity", MIN_FIDELITY)),
                          int(s.get("fidelity_trials", FIDELITY_TRIALS)))  # fmt: skip
        lines.append(f"  {f.text()}; {pruned_at.get(step, 0)} trials stopped there")
    return lines
