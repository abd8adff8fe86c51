"""The paper's math data, declared once and staged from the Hugging Face hub on a login node:

    python -m entrobench.protocols.rlvr.math_data --data-root /shared/data          # everything below
    python -m entrobench.protocols.rlvr.math_data dapo_math_17k aime24 --data-root DIR
    python -m entrobench.protocols.rlvr.math_data --list

Each set becomes `<data root>/rlvr_math/<name>.jsonl`, one {"id", "prompt", "answer"} per line:
`prompt` is the user message the policy sees (the chat template is applied when it is used),
`answer` the reference answer as text. Compute nodes then read only these files (offline).

Training data. The paper trains its Table 2 runs on DAPO-Math-17k: "We use the DAPO-MATH dataset
(Yu et al., 2025) for training" (arXiv 2505.22617, Sec. 4.3; the authors' README: "Our training
data is built from DAPO-MATH"). MATH levels 3-5, which this card used to name, is no training set
of the paper (its Sec. 2 law-fitting runs train Qwen on Eurus-2-RL-Math, Appendix A). The hub's
DAPO-Math-17k holds each of its ~17k prompts many times over (1.79M rows); staging keeps the first
row of each distinct prompt. Its prompts carry DAPO's instruction ("... The last line of your
response should be of the form Answer: $Answer ..."), kept as they are.

Evaluation data: the seven benchmarks of Table 2 (benchmarks.py), each wrapped in the same
instruction, since the policy is trained to answer in that form. AIME 2024, AIME 2025 and
MATH-500 are the hub datasets lm-eval's own aime24, aime25 and minerva_math500 tasks read; AMC is
NuminaMath's AIMO validation set (the paper cites Li et al. 2024 for it); OMNI-MATH, OlympiadBench
(its English, open-ended, text-only math competition part) and Minerva (OCW courses) are their
authors' releases as mirrored on the hub. The column names are as published; a set whose columns
changed fails staging with one line naming the set, the field and the columns it has.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MATH_DIR = "rlvr_math"  # under the data root

# DAPO-Math-17k's instruction around each problem (its `prompt` field), used for every benchmark too
INSTRUCTION = ("Solve the following math problem step by step. The last line of your response should be of the form "
               "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n{problem}\n\n"
               "Remember to put your answer on its own line after \"Answer:\".")


@dataclass(frozen=True)
class HubSet:
    name: str
    repo: str  # the hub dataset id
    split: str
    problem: str  # field path of the problem (dots walk into dicts and lists: "prompt.0.content")
    answer: str  # field path of the reference answer
    what: str
    config: str | None = None  # the hub dataset's configuration, where it has several
    wrap: bool = True  # put the problem into INSTRUCTION (False: the field is the whole prompt already)
    distinct: bool = False  # keep the first row of each distinct prompt

    def rows(self, records: Iterable[dict]) -> list[dict]:
        """The JSONL rows of the hub's records: id, prompt, answer."""
        out, seen = [], set()
        for i, record in enumerate(records):
            problem, answer = str(field_at(record, self.problem, self)).strip(), answer_text(field_at(record, self.answer, self))
            prompt = INSTRUCTION.format(problem=problem) if self.wrap else problem
            if self.distinct and prompt in seen:
                continue
            seen.add(prompt)
            out.append({"id": f"{self.name}-{i}", "prompt": prompt, "answer": answer})
        return out


TRAIN_SETS = {
    "dapo_math_17k": HubSet("dapo_math_17k", "BytedTsinghua-SIA/DAPO-Math-17k", "train", "prompt.0.content", "reward_model.ground_truth",
                            "DAPO-Math-17k (Yu et al. 2025, arXiv 2503.14476): 17k competition problems with integer answers",
                            wrap=False, distinct=True),
}
EVAL_SETS = {
    "aime24": HubSet("aime24", "Maxwell-Jia/AIME_2024", "train", "Problem", "Answer", "AIME 2024, 30 problems (lm-eval's aime24 data)"),
    "aime25": HubSet("aime25", "math-ai/aime25", "test", "problem", "answer", "AIME 2025, 30 problems (lm-eval's aime25 data)"),
    "amc23": HubSet("amc23", "AI-MO/aimo-validation-amc", "train", "problem", "answer", "AMC 2022-2023, 83 problems (NuminaMath's AIMO validation set)"),
    "math500": HubSet("math500", "HuggingFaceH4/MATH-500", "test", "problem", "answer", "MATH-500 (lm-eval's minerva_math500 data)"),
    "omni_math": HubSet("omni_math", "KbsdJames/Omni-MATH", "test", "problem", "answer", "Omni-MATH (Gao et al. 2024), 4428 olympiad problems"),
    "olympiadbench": HubSet("olympiadbench", "Hothan/OlympiadBench", "train", "question", "final_answer",
                            "OlympiadBench (He et al. 2024), English open-ended text-only math competition problems", config="OE_TO_maths_en_COMP"),
    "minerva": HubSet("minerva", "math-ai/minervamath", "test", "question", "answer", "Minerva's OCW courses problems (Lewkowycz et al. 2022), 272"),
}
HUB_SETS = {**TRAIN_SETS, **EVAL_SETS}


def field_at(record: dict, path: str, hub: HubSet):
    value = record
    for part in path.split("."):
        try:
            value = value[int(part)] if isinstance(value, (list, tuple)) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            have = ", ".join(map(str, record)) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"{hub.repo} ({hub.name}): no field {path!r} in its rows (they have: {have})") from None
    return value


def answer_text(value) -> str:
    """A reference answer as text: a one-element list is its element; 142.0 is "142"."""
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else ", ".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def jsonl_path(data_root: Path, name: str) -> Path:
    return Path(data_root) / MATH_DIR / f"{name}.jsonl"


def read_rows(data_root: Path, name: str) -> list[dict]:
    path = jsonl_path(data_root, name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not staged; run `python -m entrobench.protocols.rlvr.math_data {name} --data-root {data_root}` on a machine with internet")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage(names: Iterable[str], data_root: Path, load: Callable | None = None, log=print) -> list[Path]:
    """Fetch each set from the hub (`load`: datasets.load_dataset, or a stand-in in tests) and
    write its JSONL atomically; a set already staged is left alone."""
    if load is None:
        from datasets import load_dataset as load
    written = []
    for name in names:
        if name not in HUB_SETS:
            raise ValueError(f"unknown math set {name!r} (expected one of: {', '.join(HUB_SETS)})")
        hub, path = HUB_SETS[name], jsonl_path(data_root, name)
        if path.is_file():
            log(f"{name}: staged already ({path})")
            continue
        rows = hub.rows(load(hub.repo, hub.config, split=hub.split) if hub.config else load(hub.repo, split=hub.split))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".jsonl.part")
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        os.replace(tmp, path)
        log(f"{name}: {len(rows)} rows -> {path}")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stage the RLVR card's math data from the Hugging Face hub (a login node).")
    parser.add_argument("names", nargs="*", help=f"sets to stage (default: all): {', '.join(HUB_SETS)}")
    parser.add_argument("--data-root", type=Path, help="where data lives (default: $ENTROBENCH_DATA_ROOT)")
    parser.add_argument("--list", action="store_true", help="list the sets and where each comes from")
    args = parser.parse_args(argv)
    if args.list:
        for hub in HUB_SETS.values():
            print(f"{hub.name:14s} {hub.repo}{'/' + hub.config if hub.config else ''} [{hub.split}]  {hub.what}")
        return 0
    data_root = args.data_root or (Path(os.environ["ENTROBENCH_DATA_ROOT"]) if os.environ.get("ENTROBENCH_DATA_ROOT") else None)
    if data_root is None:
        parser.error("no data root: pass --data-root DIR or set ENTROBENCH_DATA_ROOT")
    try:
        stage(args.names or list(HUB_SETS), data_root)
    except Exception as err:  # noqa: BLE001 -- one line for the user, whatever the hub said
        print(f"math_data: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
