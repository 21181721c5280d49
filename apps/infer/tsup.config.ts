import { tsupConfig } from "../../tsup.shared";

export default tsupConfig(["src/cli.ts", "src/run.ts"], { dts: false });
