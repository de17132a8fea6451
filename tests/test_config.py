import pytest

from knowlearn.cli import shipped_config
from knowlearn.config import RunConfig, load_config, save_config
from knowlearn.errors import KnowlearnError
from knowlearn.experiment.design import arm_cfg, load_experiment


def test_defaults_are_the_embedded_default():
    cfg = load_config()
    assert cfg == RunConfig()
    assert cfg.model.path is None and cfg.data.documents is None


def test_overrides_keep_the_sections_other_defaults():
    cfg = load_config(
        None, ["cpt.lr=1e-3", "it.epochs=3", "cpt.betas=[0.9, 0.95]", "data.permute=true"]
    )
    assert cfg.cpt.lr == 1e-3 and cfg.cpt.epochs == RunConfig().cpt.epochs
    assert cfg.it.epochs == 3.0 and isinstance(cfg.it.epochs, float)
    assert cfg.cpt.betas == (0.9, 0.95) and cfg.data.permute is True


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("out: runs/x\ncpt:\n  lr: 0.01\n  batch_size: 8\n")
    cfg = load_config(path, ["cpt.batch_size=4"])
    assert (cfg.out, cfg.cpt.lr, cfg.cpt.batch_size) == ("runs/x", 0.01, 4)


def test_saved_config_loads_back_identically(tmp_path):
    cfg = load_config(None, ["cpt.lr=1e-3", "model.architecture=qwen2"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


# More bad configs are cases of the catalog, tests/test_bad_inputs.py.
@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ("dta.people=3", "dta", "did you mean 'data'"),
        ("cpt.lr=fast", "cpt.lr", "expected float"),
        ("data.people=1", "data.people", ">= 2"),
        ("data.renderings=0", "data.renderings", ">= 1"),
        ("data.fullname=3", "data.fullname", "expected bool"),
        ("cpt.betas=[0.9]", "cpt.betas", "list of 2"),
        ("optim.sam.perturb_fraction=0", "optim.sam.perturb_fraction", "(0, 1]"),
        ("optim.sam.adaptive_scope=biases", "optim.sam.adaptive_scope", "weights or all"),
        ("shard=maybe", "shard", "expected bool"),
    ],
)
def test_bad_config_values_name_the_field(override, field, words):
    with pytest.raises(KnowlearnError) as e:
        load_config(None, [override])
    assert e.value.field == field and words in str(e.value)


def test_shipped_demo_experiment_resolves_every_arm():
    exp = load_experiment(shipped_config("demo.yaml"))
    assert "P" in exp.arms
    for arm in exp.arms:
        for seed in exp.seeds:
            cfg = arm_cfg(exp, arm, seed)
            assert cfg.out.endswith(f"{arm}/seed{seed}")

    # Equal exposures: renderings x (copies + original) x epochs is the same in every arm.
    def exposures(cfg):
        fmt = cfg.augment.cpt
        return cfg.data.renderings * (fmt.copies + fmt.include_original) * cfg.cpt.epochs

    per_arm = {arm: exposures(arm_cfg(exp, arm, 0)) for arm in exp.arms}
    assert set(per_arm.values()) == {30.0}, per_arm


@pytest.mark.parametrize(
    "name", sorted(p.name for p in shipped_config("demo.yaml").parent.glob("*.yaml"))
)
def test_every_shipped_experiment_config_resolves(name):
    exp = load_experiment(shipped_config(name))
    for arm in exp.arms:
        arm_cfg(exp, arm, exp.seeds[0])
    for group in exp.groups.values():
        assert set(group["arms"]) <= set(exp.arms)


def test_a_choice_note_is_said_only_for_the_value_it_is_about():
    from knowlearn.config import from_dict

    with pytest.raises(KnowlearnError, match="fp16 is not supported") as e:
        from_dict(RunConfig, {"mixed_precision": "fp16"})
    with pytest.raises(KnowlearnError) as e:
        from_dict(RunConfig, {"mixed_precision": "fp8"})
    assert "fp16" not in str(e.value) and "must be auto, bf16 or no" in str(e.value)


def test_a_renamed_key_is_still_read_under_its_former_name(tmp_path):
    """`data.format_people` became `data.qa_teaching_people`: old configs and commands keep
    working (with a warning), and naming both is refused."""
    with pytest.warns(FutureWarning, match="'data.format_people' is now 'data.qa_teaching_people'"):
        cfg = load_config(None, ["data.format_people=4"])
    assert cfg.data.qa_teaching_people == 4
    path = tmp_path / "old.yaml"
    path.write_text("data:\n  format_people: 6\n")
    with pytest.warns(FutureWarning):
        assert load_config(path).data.qa_teaching_people == 6
    with pytest.raises(KnowlearnError, match="only one of") as e:
        load_config(path, ["data.qa_teaching_people=8"])
    assert e.value.field == "data.format_people"


def test_the_cli_says_a_renamed_key_in_one_line(tmp_path, capsys):
    from knowlearn.cli import main

    out = tmp_path / "run"
    assert main(["train", "--quiet", f"out={out}", "data.format_people=1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "knowlearn: warning: config key 'data.format_people' is now 'data.qa_teaching_people'",
        "knowlearn: error: field 'data.qa_teaching_people': must be 0 or >= 2",
    ]
    assert not out.exists()
