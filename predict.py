"""Ask a model every selected exam question; one prediction file per question.

    python predict.py                                           # embedded SmolLM2 on llama.cpp (no GPU, no key)
    python predict.py model=qwen3_32b provider=vllm             # a vLLM server at provider.base_url
    python predict.py model=gpt_5_2 provider=openrouter image_mode=vision
    python predict.py -m model=gpt_oss_120b provider=vllm model.reasoning_effort=low,medium,high

Settings: conf/config.yaml; answers: predictions/<dataset>/<run>/ (see jmle_eval/runner.py).
"""

from jmle_eval.errors import quiet_interrupts

quiet_interrupts()

import sys

import hydra

from jmle_eval import runner
from jmle_eval.cli import check_argv, guarded, register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def predict(cfg) -> None:  # noqa: ANN001 - Hydra passes a DictConfig
    """Run the predict stage for the composed config."""
    guarded(runner.main)(cfg)


if __name__ == "__main__":
    check_argv(sys.argv[1:])
    predict()
