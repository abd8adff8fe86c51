"""Card validation: a good card loads; each kind of mistake is one line naming file and key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from entrobench.card import CardError, load_card, load_cards

REPO = Path(__file__).resolve().parents[2]


def error_of(path) -> str:
    with pytest.raises(CardError) as info:
        load_card(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def test_every_card_in_the_repo_is_valid():
    cards = load_cards(REPO / "configs")
    assert {"eata_niu2022", "sar_niu2023", "deyo_lee2024"} <= set(cards)
    for card in cards.values():
        for scale in ("tiny", "smoke", "full"):
            assert card.scale(scale).seeds


def test_minimal_card_merges_defaults_and_scales(write_card):
    card = load_card(write_card())
    assert card.id == "test_card"
    assert card.spec.family == "tta"  # from the defaults
    smoke, full = card.scale("smoke"), card.scale("full")
    assert smoke.protocol.architecture == "small_cnn" and full.protocol.architecture == "resnet50"
    assert smoke.datasets == ["mnist_c"] and full.datasets == ["imagenet_c"]


def test_unknown_key_suggests_the_near_one(write_card):
    msg = error_of(write_card({"titel": "x"}))
    assert "titel: unknown key (did you mean title?)" in msg


def test_unknown_method_param_names_the_key(write_card):
    methods = [{"name": "eta", "method": "tta/eata", "params": {"d_margn": 0.1}}]
    msg = error_of(write_card({"methods": methods}))
    assert "methods[0].params.d_margn: unknown key (did you mean d_margin?)" in msg


def test_wrong_type_says_what_was_expected(write_card):
    msg = error_of(write_card({"seeds": "zero"}))
    assert "seeds: expected a list" in msg
    msg = error_of(write_card({"settings": [{"name": "x", "batch_size": "big"}]}))
    assert "settings[0].batch_size: expected an integer, got 'big'" in msg


def test_method_that_does_not_exist(write_card):
    msg = error_of(write_card({"methods": [{"name": "tentt"}]}))
    assert "methods[0].name: unknown method 'tta/tentt' (did you mean tta/tent?)" in msg


def test_claim_naming_an_unknown_method(write_card):
    msg = error_of(write_card({"claims": [{"text": "sar.error_pct < tent.error_pct"}]}))
    assert "claims[0].text: unknown method 'sar'" in msg


def test_claim_naming_an_unknown_metric(write_card):
    msg = error_of(write_card({"claims": [{"text": "tent.eror_pct < source.error_pct"}]}))
    assert "claims[0].text: unknown metric 'eor_pct'".replace("eor", "eror") in msg and "did you mean error_pct?" in msg


def test_claim_with_code_is_refused(write_card):
    msg = error_of(write_card({"claims": [{"text": "__import__('os').system('true') < 1"}]}))
    assert "claims[0].text" in msg and "not allowed" in msg


def test_missing_required_key(write_card, minimal_card):
    card = {k: v for k, v in minimal_card.items() if k != "title"}
    msg = error_of(write_card(text=__import__("yaml").safe_dump(card)))
    assert "title: missing (expected a string)" in msg


def test_bad_protocol_value_in_a_scale(write_card):
    msg = error_of(write_card({"scales": {"smoke": {"protocol": {"corruptions": ["fogg"]}}}}))
    assert "unknown corruption 'fogg'" in msg


def test_unknown_dataset(write_card):
    msg = error_of(write_card({"datasets": ["mnist"]}))
    assert "datasets[0]: unknown dataset 'mnist' (did you mean mnist_c?)" in msg


def test_yaml_syntax_error(write_card):
    msg = error_of(write_card(text="title: [unclosed\n"))
    assert "not valid YAML" in msg


def test_cli_reports_one_line_and_exits_nonzero(write_card, configs):
    write_card({"methods": [{"name": "tentt"}]})
    proc = subprocess.run([sys.executable, "-m", "entrobench", "check", "--configs", str(configs)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "test_card.yaml: methods[0].name: unknown method" in lines[0]
    assert "Traceback" not in proc.stderr


def test_medium_scale_exists_only_where_a_card_defines_it(write_card):
    card = load_card(write_card())
    with pytest.raises(CardError, match="defines no scales.medium"):
        card.scale("medium")  # not the full protocol under another name
    medium = load_card(write_card({"scales": {"medium": {"seeds": [0]}}})).scale("medium")
    assert medium.seeds == [0] and medium.protocol.architecture == "resnet50"  # the rest from the card's base


def test_a_scale_may_run_a_subset_of_rows(write_card):
    from entrobench.cells import expand

    card = load_card(write_card({"scales": {"smoke": {"methods": ["source", "tent"]}}, "claims": [{"text": "tent.error_pct < source.error_pct"}]}))
    assert [m.name for m in card.scale("smoke").methods] == ["source", "tent"]
    assert {c.method for c in expand(card.scale("smoke"))} == {"source", "tent"}
    assert [m.name for m in card.scale("full").methods] == ["source", "tent", "eta"]
    msg = error_of(write_card({"scales": {"smoke": {"methods": ["sorce"]}}}))
    assert "scales.smoke.methods[0]: unknown method 'sorce'" in msg


def test_claim_on_a_row_a_scale_does_not_run(write_card):
    changes = {"scales": {"smoke": {"methods": ["source", "tent"]}}, "claims": [{"text": "eta.error_pct < source.error_pct", "scales": ["smoke", "full"]}]}
    msg = error_of(write_card(changes))
    assert "claims[0].scales: 'eta' does not run at scale 'smoke'" in msg
    changes["claims"][0]["scales"] = ["full"]
    assert load_card(write_card(changes))


# --- names, values, paths and inheritance -----------------------------------------------------------


@pytest.mark.parametrize("name", ["$(touch pwned)", "a`id`", "x;y", "..", "a/b", "a b", "-rf"])
def test_names_that_reach_paths_and_commands_are_refused(write_card, name):
    msg = error_of(write_card({"settings": [{"name": name, "batch_size": 64}]}))
    assert "settings[0].name: setting name" in msg and "letters, digits" in msg
    msg = error_of(write_card({"methods": [{"name": name, "method": "tta/tent"}]}))
    assert "methods[0].name: row name" in msg


@pytest.mark.parametrize("changes, expected", [
    ({"seeds": [-1]}, "seeds[0]: expected a seed in 0..4294967295, got -1"),
    ({"seeds": [10**30]}, "seeds[0]: expected a seed in 0.."),
    ({"seeds": [0, 0]}, "seeds: a seed appears twice"),
    ({"settings": [{"name": "a", "batch_size": 0}]}, "batch_size and max_samples must be >= 1, got 0"),
    ({"settings": [{"name": "a"}, {"name": "a"}]}, "settings[1].name: 'a' appears twice"),
    ({"scales": {"smoke": {"protocol": {"n_test": -5}}}}, "n_test must be >= 1, got -5"),
    ({"scales": {"smoke": {"protocol": {"train_epochs": 0}}}}, "train_epochs must be >= 1, got 0"),
    ({"methods": [{"name": "tent", "params": {"lr": float("inf")}}]}, "methods[0].params.lr: expected a finite number, got inf"),
    ({"methods": [{"name": "tent", "params": {"lr": float("nan")}}]}, "methods[0].params.lr: expected a finite number, got nan"),
    ({"scales": {"smoke": {"resources": {"gpus": 1}}}}, "scales.smoke.resources.gpus: unknown resource 'gpus' (did you mean gpu?)"),
    ({"scales": {"smoke": {"resources": {"mem_mb": -1}}}}, "scales.smoke.resources.mem_mb: expected a whole number >= 0"),
    ({"scales": {"full": {"resources": {"slurm_extra": "--signal=TERM@120 $(touch /tmp/x)"}}}}, "'$(touch' is not an allowed sbatch option"),
    ({"scales": {"full": {"resources": {"slurm_extra": "--comment=`id`"}}}}, "'--comment=`id`': option values may hold"),
    ({"scales": {"full": {"resources": {"slurm_extra": "--wrap=ls"}}}}, "'--wrap=ls' is not an allowed sbatch option"),
    ({"scales": {"full": {"resources": {"constraint": "a100;rm -rf"}}}}, "scales.full.resources.constraint: expected letters, digits"),
    ({"scales": {"full": {"protocol": {"source_weights": "/etc/passwd"}}}}, "source_weights must be 'train', 'published' or one of"),
    ({"scales": {"full": {"protocol": {"source_weights": "../../x.pt"}}}}, "source_weights must be 'train', 'published' or one of"),
    ({"cost": {"throughput": [{"arch": "resnet50", "per_s": 0, "source": "x"}]}}, "per_s must be > 0"),
    ({"cost": {"throughput": [{"arch": "resnet50", "per_s": 10}]}}, "cost.throughput[0].source: missing"),
])
def test_values_out_of_range_are_one_line(write_card, changes, expected):
    assert expected in error_of(write_card(changes))


@pytest.mark.parametrize("name", ["/etc/hosts", "../outside", "_defaults/../../x"])
def test_defaults_stay_inside_the_configs_folder(write_card, name):
    msg = error_of(write_card({"defaults": [name]}))
    assert "defaults[0]: expected a name under" in msg and "no absolute path, no '..'" in msg


def test_yaml_errors_keep_line_column_and_cause(write_card):
    msg = error_of(write_card(text="title: x\nseeds: [0, 1\nversion: 1\n"))
    assert "not valid YAML: line 3, column 8" in msg and "expected ','" in msg
    msg = error_of(write_card(text="title: x\nversion: 1\ntitle: y\n"))
    assert "line 3, column 1: key 'title' given twice in one mapping" in msg


def test_a_card_can_drop_an_inherited_scale_and_compares_only_with_its_own_full(write_card, tmp_path):
    from entrobench import tables

    card = load_card(write_card({"scales": {"full": None, "tiny": {"seeds": [0]}}}))
    assert "full" not in card.spec.scales and {"smoke", "tiny"} <= set(card.spec.scales)
    with pytest.raises(CardError, match="defines no scales.full"):
        card.scale("full")
    lines = tables._protocol_differences(card, "smoke")
    assert lines[0] == "The card has no `full` scale (no paper setting to compare with)."
    assert not any("paper: resnet50" in line for line in lines)


def test_a_card_can_replace_inherited_datasets_and_settings(write_card):
    card = load_card(write_card({"scales": {"smoke": {"datasets": ["digits_c"]}}, "settings": [{"name": "only", "batch_size": 8}]}))
    assert card.scale("smoke").datasets == ["digits_c"] and [s.name for s in card.scale("smoke").settings] == ["only"]


def test_declared_datasets_are_checked_by_the_family_schema(write_card, configs):
    (configs / "_datasets").mkdir()
    (configs / "_datasets" / "mine.yaml").write_text("family: tta\nformat: npz\npath: x.npz\nimages: x\nlabels: y\nchanels: 1\n")
    card = write_card({"datasets": ["mine"]})
    with pytest.raises(CardError, match=r"_datasets/mine.yaml: chanels: unknown key \(did you mean channels\?\)$"):
        load_card(card)  # the error names the file that holds the mistake
    (configs / "_datasets" / "mine.yaml").write_text("family: tta\nformat: zip\nimages: x\n")
    with pytest.raises(CardError, match="_datasets/mine.yaml: dataset: format: expected one of npz, npy, h5, idx, image_folder, got 'zip'"):
        load_card(card)
    (configs / "_datasets" / "mine.yaml").write_text("family: tta\nformat: npz\npath: x.npz\nimages: x\nlabels: y\n")
    assert load_card(write_card({"datasets": ["mine"]})).dataset("mine").format == "npz"
