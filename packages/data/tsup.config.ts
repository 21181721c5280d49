import { tsupConfig } from "../../tsup.shared";

export default tsupConfig(["src/index.ts", "src/cli.ts", "src/testing.ts"]);
