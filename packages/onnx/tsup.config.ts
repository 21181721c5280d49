import { tsupConfig } from "../../tsup.shared";

export default tsupConfig(["src/index.ts", "src/available.ts", "src/cli.ts"]);
