#!/usr/bin/env bash
# Install llama-cpp-python (the embedded model's server) built for this machine, without llama.cpp's AMX kernels.
#
# Why: pip compiles llama.cpp from source with -march=native. On Intel CPUs with AMX (Sapphire Rapids and
# newer), the AMX matrix kernels built by GCC 12 crash the server with SIGILL at the first request
# (ggml-org/llama.cpp#26954: the tile configuration is lost before the tile instructions run). -mno-amx-*
# keeps every other native instruction set (AVX-512, VNNI) and drops only those kernels; SmolLM2 does not
# need them. pip's own wheel cache is keyed by the source archive alone, so a wheel built natively on one CPU
# would be reused on another: this script keeps its wheels under a key of the compiler, the flags and the
# CPU's feature list instead, and builds once per key (7-15 minutes on two cores).
#
# Usage: bash tools/install_llama_cpp.sh   (in the venv you use; before or after pip install -r requirements.txt)
# JMLE_EVAL_WHEEL_CACHE overrides where the wheels are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python}
spec=$(grep -E '^llama-cpp-python' requirements.txt | sed -e 's/[[:space:]]*#.*//' -e 's/\[[^]]*\]//')
flags=""
if [ "$(uname -m)" = x86_64 ] && echo 'int main(void){return 0;}' | "${CC:-cc}" -x c -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -o /dev/null - 2>/dev/null; then
  flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
fi
cpu=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m)
key=$(printf '%s\n' "$spec" "$flags" "$("${CC:-cc}" --version 2>/dev/null | head -1)" "$cpu" "$("$python" -c 'import sys; print(sys.version_info[:2])')" | sha256sum | cut -c1-16)
dir="${JMLE_EVAL_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jmle-eval/wheels}/llama-cpp-$key"

if ! compgen -G "$dir/llama_cpp_python-*.whl" >/dev/null; then
  echo "Building $spec with CFLAGS='$flags' into $dir (once per CPU type; 7-15 minutes on two cores)" >&2
  rm -rf "$dir.tmp"
  CFLAGS="$flags" CXXFLAGS="$flags" "$python" -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$dir.tmp" "$spec"
  mv "$dir.tmp" "$dir"
fi
wheel=$(compgen -G "$dir/llama_cpp_python-*.whl" | head -1)
"$python" -m pip install -q --force-reinstall --no-deps "$wheel"
"$python" -m pip install -q "${wheel}[server]"
echo "Installed $(basename "$wheel") (CFLAGS='$flags')" >&2
