#!/usr/bin/env bash
# Rebuilds the embedded default models from scratch on the ONNX Runtime training engine, stage by stage.
# Every stage is resumable: RESUME=1 bash tools/train-embedded.sh <stage> continues from its checkpoints.
# Wall times on this 2-core machine are in the model cards.
#   bash tools/train-embedded.sh [data|mae|lm|lm4lv|ablations|results]...
# Not in the default list: `tiles`, the measured but unshipped tiled system (a patch-4 MAE on 32 px tiles,
# each 64 px image restored as 2 × 2 sequences; docs/results.md, section "Fewer pixels per LM token"), and
# `tiles4`, the same lever one step further (a patch-2 MAE on 16 px tiles, 4 × 4 sequences per image).
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@"); [ ${#stages[@]} -eq 0 ] && stages=(data mae lm lm4lv ablations results)
TASKS=${TASKS:-"identity denoise25 denoise deblur saltpepper derain hflip rot90"}
R=${RESUME:+--resume}
# tiled <grid> <mae config name> <adapter steps> <default tasks> <runs folder>: a tiled system (TILE_TASKS
# overrides the tasks). With RESUME, a complete tile folder (its manifest written last) is kept, not rebuilt.
tiled() {
  local grid=$1 mae=$2 steps=$3 tasks=${TILE_TASKS:-$4} runs=.cache/runs/$5
  [ -n "$R" ] && [ -f ".cache/data/crops-tiles$grid/manifest.json" ] || pnpm --filter @lm4lv/data-tools tiles -- --grid "$grid"
  pnpm train mae --config "models/configs/$mae.yaml" $R
  for t in $tasks; do
    pnpm train lm4lv --config "models/configs/lm4lv-$t.yaml" --mae ".cache/models/$mae" --tiles "$grid" --batch-size 1 \
      --steps "$steps" --save-dtype F16 --out "$runs/$t" $R
  done
  pnpm bench:tasks --tasks "$(echo $tasks | tr ' ' ',')" --models "$runs" --ablations "$runs/none" --out "$runs/results"
}
for s in "${stages[@]}"; do
  case "$s" in
    data)
      pnpm --filter @lm4lv/data-tools photos -- --crops-per-image 400
      pnpm --filter @lm4lv/data-tools text ;;
    mae)
      pnpm train mae --config models/configs/mae-tiny.yaml $R ;;
    lm)
      # lm-wide (3 × 512), the LM every task names in models/configs/lm4lv-<task>.yaml, and its no-repeat ablation
      pnpm train lm --config models/configs/lm-wide.yaml $R
      pnpm train lm --config models/configs/lm-wide-norepeat.yaml $R ;;
    lm4lv)
      for t in $TASKS; do pnpm train lm4lv --config "models/configs/lm4lv-$t.yaml" $R; done ;;
    ablations)
      pnpm turbo run build --filter=@lm4lv/bench... --output-logs=errors-only
      node tools/bench/dist/random-lm.js models/lm-wide .cache/models/lm-wide-random 1234
      for t in $TASKS; do
        # the ablation LMs have the shape of the LM the task's adapters were trained on
        lm=$(basename "$(sed -n 's/^llm: *//p' "models/configs/lm4lv-$t.yaml")")
        pnpm train lm4lv --config "models/configs/lm4lv-$t.yaml" --llm ".cache/models/$lm-random" --out ".cache/ablations/$t/random-lm" $R
        pnpm train lm4lv --config "models/configs/lm4lv-$t.yaml" --llm "$(sed -n 's/^out: *//p' "models/configs/$lm-norepeat.yaml")" --out ".cache/ablations/$t/norepeat-lm" $R
        pnpm train lm4lv --config "models/configs/lm4lv-$t.yaml" --mode adapters-only --steps 400 --batch-size 8 --out ".cache/ablations/$t/adapters-only" $R
      done ;;
    tiles)
      tiled 2 mae-p4-32 5000 "identity denoise25 denoise deblur saltpepper derain" tiles ;;
    tiles4)
      # 1,250 steps × 1 image = 16 pairs of tiles: the 20,000 pairs of tiles (and the compute) of `tiles`
      tiled 4 mae-p2-16 1250 "identity denoise25" tiles4 ;;
    results)
      pnpm bench:tasks --tasks "$(echo $TASKS | tr ' ' ',')" ;;
    *) echo "unknown stage $s" >&2; exit 1 ;;
  esac
done
