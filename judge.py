"""Grade prediction files with an LLM judge and a rubric; one judgment file per prediction.

    python judge.py model=gpt_5_2 provider=openai rubric=match_answer dataset=jmle2026       # every run of the data set
    python judge.py model=gpt_oss_120b provider=vllm rubric=extract_choice runs='[qwen3_32b]'
    python judge.py -m model=gpt_5_2,claude_sonnet_4_6 provider=openrouter rubric=match_answer   # two judges
    python score.py                                                                           # uses the judgments

Settings: conf/judge.yaml; judgments: judgments/<dataset>/<prediction run>/<judge run>/ (jmle_eval/judge/).
"""

from jmle_eval.errors import quiet_interrupts

quiet_interrupts()

import hydra

from jmle_eval.cli import guarded, run_hydra
from jmle_eval.config import setup
from jmle_eval.judge import runner

setup("judge")  # resolvers and schema, before Hydra composes conf/


@hydra.main(config_path="conf", config_name="judge", version_base="1.3")
def judge(cfg) -> None:  # noqa: ANN001 - Hydra passes a DictConfig
    """Run the judge stage for the composed config."""
    guarded(runner.main, output_root="paths.judgments")(cfg)


if __name__ == "__main__":
    run_hydra(judge, "judge")  # a config mistake: one paragraph, exit 2
