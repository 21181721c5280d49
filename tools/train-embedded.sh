#!/usr/bin/env bash
# Rebuilds the embedded default models from scratch (issue 5), stage by stage. Each stage is resumable
# (add --resume to its command). Wall times on this 2-core machine are in the model cards.
#   bash tools/train-embedded.sh [data|mae|lm|lm4lv|ablations|results]...
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@"); [ ${#stages[@]} -eq 0 ] && stages=(data mae lm lm4lv ablations results)
TASKS=${TASKS:-"denoise deblur saltpepper hflip"}
for s in "${stages[@]}"; do
  case "$s" in
    data)
      pnpm --filter @lm4lv/data-tools photos
      pnpm --filter @lm4lv/data-tools text ;;
    mae)
      pnpm train mae --config models/configs/mae-tiny.yaml
      pnpm train mae --config models/configs/mae-tiny-finetune.yaml ;;
    lm)
      pnpm train lm --config models/configs/lm-tiny.yaml ;;
    lm4lv)
      for t in $TASKS; do pnpm train lm4lv --config "models/configs/lm4lv-$t.yaml"; done ;;
    ablations)
      pnpm turbo run build --filter=@lm4lv/bench... --output-logs=errors-only
      node tools/bench/dist/random-lm.js models/lm-tiny .cache/models/lm-random 1234
      for t in $TASKS; do
        pnpm train lm4lv --config "models/configs/lm4lv-$t.yaml" --llm .cache/models/lm-random --out ".cache/ablations/$t/random-lm"
        pnpm train lm4lv --config "models/configs/lm4lv-$t.yaml" --mode adapters-only --steps 400 --batch-size 8 --out ".cache/ablations/$t/adapters-only"
      done ;;
    results)
      pnpm bench:tasks --tasks "$(echo $TASKS | tr ' ' ',')" ;;
    *) echo "unknown stage $s" >&2; exit 1 ;;
  esac
done
