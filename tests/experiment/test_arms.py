import json

import pytest

from knowlearn.cli import main, shipped_config
from knowlearn.errors import KnowlearnError
from knowlearn.experiment.arms import run_experiment
from knowlearn.experiment.design import load_experiment

TINY_BASE = """
base:
  data: {people: 8}
  model: {hidden_size: 32, intermediate_size: 64, num_layers: 2, num_heads: 2}
  cpt: {epochs: 4, batch_size: 8}
  it: {epochs: 2}
arms:
  baseline: {}
  paraphrase: {data: {renderings: 2, permute: true}, cpt: {epochs: 2}}
seeds: [0]
parallel: 2
"""


def test_arms_run_in_parallel_share_a_tokenizer_and_are_cached(tmp_path):
    (tmp_path / "exp.yaml").write_text(TINY_BASE)
    exp = load_experiment(tmp_path / "exp.yaml", [f"out={tmp_path / 'run'}"])
    rows = run_experiment(exp, progress=False)
    assert [r["arm"] for r in rows] == ["baseline", "paraphrase"]
    assert rows[0]["cpt_tokens"] > 0 and 0 <= rows[1]["test_em"] <= 100
    run = tmp_path / "run"
    for arm in ("baseline", "paraphrase"):
        cfg = (run / "arms" / arm / "seed0.yaml").read_text()
        assert f"tokenizer: {run / 'tokenizer'}" in cfg
    assert (run / "summary.md").read_text().startswith("| arm | seed | held-out QA EM")
    # A second run trains nothing: results are read back as they are.
    stamp = (run / "arms" / "baseline" / "seed0" / "results.json").stat().st_mtime_ns
    assert run_experiment(exp, progress=False) == rows
    assert (run / "arms" / "baseline" / "seed0" / "results.json").stat().st_mtime_ns == stamp
    assert json.loads((run / "summary.json").read_text()) == rows


def test_a_bad_arm_is_refused_before_any_work(tmp_path):
    (tmp_path / "exp.yaml").write_text(TINY_BASE.replace("renderings: 2", "renderngs: 2"))
    with pytest.raises(KnowlearnError) as e:
        load_experiment(tmp_path / "exp.yaml")
    assert "paraphrase" in str(e.value) and "did you mean 'data.renderings'" in str(e.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_full_demo_shows_that_paraphrased_documents_make_facts_extractable(tmp_path, capsys):
    """The README's first command, as shipped (~4 min on 2 cores)."""
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    rows = {r["arm"]: r for r in json.loads((tmp_path / "demo" / "summary.json").read_text())}
    # The demo's arms: P plain, D duplicates, F formats, R paraphrases (configs/demo.yaml).
    assert rows["P"]["memorization_after_cpt"] > 90 and rows["R"]["memorization_after_cpt"] > 90
    assert rows["R"]["test_em"] > rows["P"]["test_em"] + 15
    assert load_experiment(shipped_config("demo.yaml")).arms.keys() == rows.keys()


SHARED = """
base:
  data: {people: 8}
  model: {hidden_size: 32, intermediate_size: 64, num_layers: 2, num_heads: 2}
  cpt: {epochs: 3, batch_size: 8}
  it: {epochs: 2}
  base: {people: 6, renderings: 2, train: {epochs: 2, batch_size: 8}}
arms:
  baseline: {}
  sam_it: {optim: {sam: {rho: 0.05, stages: [it]}}}
seeds: [0]
parallel: 2
groups:
  rho: {param: optim.sam.rho, arms: [baseline, sam_it]}
descriptions:
  sam_it: SAM in instruction tuning only
"""


def test_base_model_is_built_once_and_arms_share_identical_stages(tmp_path):
    (tmp_path / "exp.yaml").write_text(SHARED)
    exp = load_experiment(tmp_path / "exp.yaml", [f"out={tmp_path / 'run'}"])
    rows = run_experiment(exp, progress=False)
    cache = tmp_path / "run" / "cache"
    names = sorted(p.name.split("-")[0] for p in cache.iterdir() if p.is_dir())
    # one init, one base, one CPT (identical in both arms), two IT stages
    assert names == ["base", "cpt", "init", "it", "it"], names
    for arm in ("baseline", "sam_it"):
        run_dir = tmp_path / "run" / "arms" / arm / "seed0"
        assert (run_dir / "cpt").is_symlink() and (run_dir / "base").is_symlink()
        assert (run_dir / "cpt").resolve() == (
            tmp_path / "run" / "arms" / "baseline" / "seed0" / "cpt"
        ).resolve()
    results = {r["arm"]: r for r in rows}
    assert (
        results["baseline"]["memorization_after_cpt"] == results["sam_it"]["memorization_after_cpt"]
    )
    meta = json.loads((tmp_path / "run" / "experiment.json").read_text())
    assert (
        meta["groups"]["rho"]["arms"] == ["baseline", "sam_it"] and meta["descriptions"]["sam_it"]
    )
    assert meta["seeds"] == [0] and "machine" in meta


def test_killed_experiment_resumes_to_the_same_results(tmp_path):
    """SIGKILL the whole experiment (parent and arm processes) mid-CPT, run it again: the
    rerun redoes only what is missing and ends with the uninterrupted run's metrics."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = TINY_BASE.replace(
        "cpt: {epochs: 4, batch_size: 8}", "cpt: {epochs: 30, batch_size: 4, checkpoint_every: 3}"
    )
    (tmp_path / "exp.yaml").write_text(config)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "knowlearn",
            "run",
            "--config",
            str(tmp_path / "exp.yaml"),
            f"out={killed}",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(killed.glob("cache/cpt-*/latest")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(killed.glob("cache/cpt-*/latest")), "the run was killed after a checkpoint"
    assert len(list(killed.glob("arms/*/seed0/results.json"))) < 2, "and before every arm finished"

    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    resumed = run_experiment(
        load_experiment(tmp_path / "exp.yaml", [f"out={killed}"]), progress=False
    )
    clean = run_experiment(
        load_experiment(tmp_path / "exp.yaml", [f"out={tmp_path / 'clean'}"]), progress=False
    )
    assert strip(resumed) == strip(clean)


def test_population_seeds_run_a_few_whole_seeds_at_a_time(tmp_path):
    from knowlearn.experiment.arms import job_order

    (tmp_path / "exp.yaml").write_text(TINY_BASE)
    exp = load_experiment(tmp_path / "exp.yaml", ["seeds=[1, 2, 3, 4, 5]"])
    arms = ("baseline", "paraphrase")
    assert job_order(exp) == [(a, s) for a in arms for s in (1, 2, 3, 4, 5)]
    # parallel 2: seeds 1 and 2 side by side (each process builds one base), then 3-5
    # together (a lone seed 5 would leave one process waiting for its base).
    exp.population_seeds = True
    assert job_order(exp) == [(a, s) for a in arms for s in (1, 2)] + [
        (a, s) for a in arms for s in (3, 4, 5)
    ]


# (cpt.epochs, it.epochs) of every arm before the shipped experiments set exposures instead.
EPOCHS_BEFORE_EXPOSURES = {
    "demo": {"P": (30, 5), "D": (6, 5), "F": (6, 5), "R": (6, 5)},
    "paper": {
        "baseline": (60, 15),
        "format": (12, 15),
        "sam": (60, 15),
        "format_sam": (12, 15),
        "paraphrase": (12, 15),
        "paraphrase_format_sam": (6, 15),
        "format_online": (60, 15),
        "it_format": (60, 3),
        "it_sam": (60, 15),
        "token_matched": (72, 15),
        "family_whitespace": (12, 15),
        "family_wrapping": (12, 15),
        "family_markup": (12, 15),
        "rho_0.01": (60, 15),
        "rho_0.2": (60, 15),
        "copies_1": (30, 15),
        "copies_9": (6, 15),
    },
    "remedies": {
        "baseline": (60, 15),
        "format": (12, 15),
        "format_online": (60, 15),
        "sam": (60, 15),
        "format_sam": (12, 15),
        "paraphrase": (12, 15),
    },
    "base_model": {
        "baseline": (60, 15),
        "format": (12, 15),
        "fbase_baseline": (60, 15),
        "fbase_format": (12, 15),
        "lbase_baseline": (60, 15),
        "lbase_format": (12, 15),
    },
}


@pytest.mark.parametrize("name", sorted(EPOCHS_BEFORE_EXPOSURES))
def test_shipped_exposures_give_the_epochs_the_arms_had(name):
    from knowlearn.experiment.design import arm_cfg

    exp = load_experiment(name)
    cfgs = {arm: arm_cfg(exp, arm, exp.seeds[0]) for arm in exp.arms}
    assert {a: (c.cpt.epochs, c.it.epochs) for a, c in cfgs.items()} == EPOCHS_BEFORE_EXPOSURES[
        name
    ]
    # One override changes every arm alike (an arm that sets its own exposures keeps them:
    # the paper's token-matched control reads each fact 72 times on purpose).
    changed = load_experiment(name, ["cpt.exposures=30"])
    for arm, cfg in cfgs.items():
        if cfg.cpt.exposures == exp.base["cpt"]["exposures"]:
            assert arm_cfg(changed, arm, exp.seeds[0]).cpt.epochs == pytest.approx(
                cfg.cpt.epochs * 30 / cfg.cpt.exposures
            ), arm


def test_a_failed_arm_stops_the_others_and_names_its_log(tmp_path, monkeypatch):
    """The arm processes are stand-ins (a shell script as the Python that `knowlearn train`
    runs under): `done` has results (skipped), `paraphrase` fails once `baseline` runs,
    `baseline` would run for a minute, `queued` waits for a slot and never gets one."""
    import sys
    import time

    runs = tmp_path / "run" / "arms"
    started = runs / "baseline" / "seed0.log"
    fake = tmp_path / "python"
    fake.write_text(
        f"""#!/bin/sh
case "$*" in
*paraphrase*)
    for _ in $(seq 300); do grep -q started {started} 2>/dev/null && break; sleep 0.1; done
    echo working; echo boom; exit 3 ;;
*) echo started; exec sleep 60 ;;
esac
"""
    )
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    arms = "arms:\n  done: {}\n  paraphrase: {}\n  baseline: {}\n  queued: {}\n"
    (tmp_path / "exp.yaml").write_text(TINY_BASE.split("arms:")[0] + arms + "parallel: 2\n")
    exp = load_experiment(tmp_path / "exp.yaml", [f"out={tmp_path / 'run'}"])
    (runs / "done" / "seed0").mkdir(parents=True)
    (runs / "done" / "seed0" / "results.json").write_text("{}")
    t0 = time.perf_counter()
    with pytest.raises(KnowlearnError) as e:
        run_experiment(exp, progress=False)
    log = runs / "paraphrase" / "seed0.log"
    assert str(e.value) == f"{log}: arm 'paraphrase' seed 0 failed: boom"
    assert started.read_text() == "started\n"
    assert time.perf_counter() - t0 < 50, "the running arm was terminated, not waited for"
    assert (runs / "paraphrase" / "seed0.yaml").is_file()
    assert not (runs / "done" / "seed0.yaml").exists() and not (runs / "queued").exists()


def test_an_arm_on_two_processes_runs_under_torchrun_and_holds_two_slots(tmp_path, monkeypatch):
    """Stand-in processes (a shell script as Python) log when each arm starts and ends: the
    2-process arm is launched through torch.distributed.run and never overlaps another run
    on 2 slots, the 1-process arms do overlap each other, and all start in job order."""
    import sys

    from knowlearn.experiment.arms import _launch
    from knowlearn.experiment.design import arm_cfg

    trace = tmp_path / "trace"
    fake = tmp_path / "python"
    fake.write_text(
        f"""#!/bin/sh
arm=$(echo "$*" | sed 's|.*/arms/\\([^/]*\\)/seed.*|\\1|')
echo "start $arm $*" >> {trace}
sleep 0.6
echo "end $arm" >> {trace}
"""
    )
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    arms = "arms:\n  a: {}\n  b: {}\n  wide: {}\n  c: {}\n  d: {}\nprocesses: {wide: 2}\n"
    (tmp_path / "exp.yaml").write_text(TINY_BASE.split("arms:")[0] + arms + "parallel: 2\n")
    exp = load_experiment(tmp_path / "exp.yaml", [f"out={tmp_path / 'run'}"])
    jobs = [(arm, 0, arm_cfg(exp, arm, 0)) for arm in exp.arms]
    _launch(jobs, None, 2, False, exp.processes)
    events = trace.read_text().splitlines()
    wide = [e for e in events if e.startswith("start wide")]
    assert len(wide) == 1 and "-m torch.distributed.run --standalone --nproc_per_node=2" in wide[0]
    assert all("torch.distributed" not in e for e in events if not e.startswith("start wide"))
    running: set[str] = set()
    overlapped = False
    for event in events:
        kind, arm = event.split()[:2]
        running = running | {arm} if kind == "start" else running - {arm}
        assert not ("wide" in running and len(running) > 1), events
        overlapped |= len(running) == 2
    assert overlapped, "1-process arms share the 2 slots"
    # In job order: those that start at one moment may log in either order.
    starts = [e.split()[1] for e in events if e.startswith("start")]
    assert set(starts[:2]) == {"a", "b"} and starts[2] == "wide" and set(starts[3:]) == {"c", "d"}


def test_processes_must_name_an_arm_and_be_a_count(tmp_path):
    for bad, why in (("{nope: 2}", "names an arm that does not exist"), ("{a: 0}", ">= 1")):
        path = tmp_path / "exp.yaml"
        path.write_text(TINY_BASE.split("arms:")[0] + f"arms:\n  a: {{}}\nprocesses: {bad}\n")
        with pytest.raises(KnowlearnError, match=why):
            load_experiment(path)


@pytest.mark.slow
def test_sam_with_local_sync_on_two_processes_end_to_end(tmp_path):
    """A real 2-process arm (torchrun, gloo) beside a 1-process one: both finish, and the
    local-sync stage is cached under a key of its own (it depends on the process count)."""
    arms = (
        "arms:\n  one: {optim: {sam: {rho: 0.05, sync: local}}}\n"
        "  two: {optim: {sam: {rho: 0.05, sync: local}}}\nprocesses: {two: 2}\n"
    )
    (tmp_path / "exp.yaml").write_text(TINY_BASE.split("arms:")[0] + arms + "parallel: 2\n")
    exp = load_experiment(tmp_path / "exp.yaml", [f"out={tmp_path / 'run'}"])
    rows = run_experiment(exp, progress=False)
    assert [r["arm"] for r in rows] == ["one", "two"]
    arms_dir = tmp_path / "run" / "arms"
    one, two = ((arms_dir / a / "seed0" / "cpt").resolve() for a in ("one", "two"))
    assert one != two, "the same config on 1 and 2 processes: two stages, not one cached"
    assert "torch.distributed" not in (arms_dir / "one" / "seed0.log").read_text()


def test_only_runs_a_subset_of_arms_with_the_whole_experiments_tokenizer(tmp_path, monkeypatch):
    """`only=paraphrase` launches that arm alone, and its tokenizer is the one the whole
    experiment trains (on both arms' corpora), so its runs are the whole experiment's."""
    from knowlearn.experiment import arms

    launched = []
    monkeypatch.setattr(arms, "_launch", lambda jobs, *a, **k: launched.extend(jobs))
    monkeypatch.setattr(arms, "_collect", lambda jobs: [])
    (tmp_path / "exp.yaml").write_text(TINY_BASE)
    for name, extra in (("all", []), ("sub", ["only=paraphrase"])):
        exp = load_experiment(tmp_path / "exp.yaml", [f"out={tmp_path / name}", *extra])
        run_experiment(exp, progress=False)
    assert [(a, s) for a, s, _ in launched] == [("baseline", 0), ("paraphrase", 0)] + [
        ("paraphrase", 0)
    ]
    tok = "tokenizer/tokenizer.json"
    assert (tmp_path / "sub" / tok).read_bytes() == (tmp_path / "all" / tok).read_bytes()
    # The tokenizer of the baseline arm's corpus alone differs: the subset did not use it.
    (tmp_path / "base.yaml").write_text(TINY_BASE.replace("  paraphrase: {data:", "  # {data:"))
    exp = load_experiment(tmp_path / "base.yaml", [f"out={tmp_path / 'one'}"])
    run_experiment(exp, progress=False)
    assert (tmp_path / "one" / tok).read_bytes() != (tmp_path / "all" / tok).read_bytes()


def test_only_must_name_arms(tmp_path):
    (tmp_path / "exp.yaml").write_text(TINY_BASE)
    with pytest.raises(KnowlearnError) as e:
        load_experiment(tmp_path / "exp.yaml", ["only=paraphrase,plain"])
    assert e.value.field == "only" and "'plain'" in str(e.value)
