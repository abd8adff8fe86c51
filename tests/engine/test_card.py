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
