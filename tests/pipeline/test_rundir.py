"""Stage keys: fields and options added later keep the keys of stages cached before them."""

import dataclasses

from knowlearn.config import FormatConfig, SAMConfig, StageConfig
from knowlearn.pipeline.rundir import digest

# Digests computed before adaptive_scope existed (commit 72e2f73).
BEFORE = {
    "default": "5f0981e26cf2e6c6",
    "sam_0.05": "7480d70e98401dba",
    "asam_0.5": "a1ab8877b0498d0c",
}


def test_plain_sam_keys_are_unchanged_by_the_new_options():
    assert digest(SAMConfig()) == BEFORE["default"]
    assert digest(SAMConfig(rho=0.05)) == BEFORE["sam_0.05"]


def test_asam_keys_change_because_its_default_scope_changed():
    """ASAM used to scale biases too; its default now leaves them unscaled (other results)."""
    asam = SAMConfig(rho=0.5, adaptive=True)
    assert digest(asam) != BEFORE["asam_0.5"]
    assert digest(asam) != digest(dataclasses.replace(asam, adaptive_scope="all"))


def test_a_field_hashed_only_where_its_rule_holds():
    @dataclasses.dataclass
    class Options:
        on: bool = False
        detail: int = dataclasses.field(default=1, metadata={"hash": lambda o: o.on})

    assert digest(Options(detail=2)) == digest(Options(detail=1))
    assert digest(Options(on=True, detail=2)) != digest(Options(on=True, detail=1))


def _without(obj, *names):
    """The dataclass as the plain dict it was before `names` existed."""
    return {k: v for k, v in dataclasses.asdict(obj).items() if k not in names}


def test_a_field_hashed_unless_default_keeps_old_keys_until_it_is_set():
    plain = FormatConfig(copies=4)
    assert digest(plain) == digest(_without(plain, "space_before_sentences"))
    spaced = dataclasses.replace(plain, space_before_sentences=True)
    assert digest(spaced) != digest(plain)


def test_a_field_that_only_sets_others_is_never_hashed():
    stage = StageConfig(epochs=6.0)
    assert digest(stage) == digest(_without(stage, "exposures", "max_tokens", "packing"))
    assert digest(dataclasses.replace(stage, exposures=30.0)) == digest(stage)


def test_packing_and_token_budgets_keep_old_stage_keys_until_set():
    """They change the float rounding of a stage's result, so a stage that uses one has a key
    of its own; stages cached before they existed keep theirs."""
    stage = StageConfig(epochs=6.0)
    for change in ({"packing": True}, {"max_tokens": 512}):
        assert digest(dataclasses.replace(stage, **change)) != digest(stage)


def test_the_process_count_enters_a_stage_key_only_where_the_result_depends_on_it():
    from types import SimpleNamespace

    from knowlearn.pipeline.stages import per_process_key
    from knowlearn.train.spec import StageSpec, TrainEnv

    def key(sam, processes):
        env = TrainEnv(accelerator=SimpleNamespace(num_processes=processes))
        return per_process_key(StageSpec("cpt", [], StageConfig(), sam=sam), env)

    local, cheap = SAMConfig(rho=0.05, sync="local"), SAMConfig(rho=0.05, perturb_fraction=0.25)
    assert key(local, 2) == key(cheap, 2) == {"processes": 2}
    # One global batch split N ways: one process's result, the same key (cached stages reused).
    assert key(SAMConfig(rho=0.05), 2) == key(None, 4) == key(local, 1) == {}


def test_a_run_made_before_a_field_existed_is_the_same_run_at_its_default(tmp_path):
    """A config.yaml saved before `cpt.packing` existed: the same run while the new field
    keeps its default (a killed run resumes after an upgrade), another run once it is set."""
    import pytest
    import yaml

    from knowlearn.config import RunConfig, save_config
    from knowlearn.errors import KnowlearnError
    from knowlearn.pipeline.rundir import check_out_dir

    cfg = RunConfig(out=str(tmp_path))
    save_config(cfg, tmp_path / "config.yaml")
    old = yaml.safe_load((tmp_path / "config.yaml").read_text())
    del old["cpt"]["packing"], old["it"]["max_tokens"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    check_out_dir(cfg)
    with pytest.raises(KnowlearnError, match=r"changed: cpt\.packing"):
        check_out_dir(dataclasses.replace(cfg, cpt=dataclasses.replace(cfg.cpt, packing=True)))


def test_a_renamed_field_keeps_the_stage_keys_and_runs_made_before_the_rename(tmp_path):
    """`data.format_people` -> `data.qa_teaching_people`: the digests are those computed
    before the rename (commit 5945874), and a run saved under the old name is the same run."""
    import yaml

    from knowlearn.config import DataConfig, RunConfig, save_config
    from knowlearn.pipeline.rundir import check_out_dir

    assert digest(DataConfig(qa_teaching_people=4)) == "486e86b3aa07258d"
    assert digest(RunConfig()) == "bd677f1d19c20800"
    cfg = RunConfig(out=str(tmp_path), data=DataConfig(qa_teaching_people=4))
    save_config(cfg, tmp_path / "config.yaml")
    old = yaml.safe_load((tmp_path / "config.yaml").read_text())
    old["data"]["format_people"] = old["data"].pop("qa_teaching_people")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    check_out_dir(cfg)
