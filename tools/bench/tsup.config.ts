import { tsupConfig } from "../../tsup.shared";

export default tsupConfig(["src/run.ts", "src/tasks.ts", "src/random-lm.ts", "src/random-hf.ts", "src/examples.ts", "src/scale.ts", "src/feature-subspace.ts", "src/copy-probe.ts", "src/copy-circuit.ts", "src/generation-child.ts"], { dts: false });
