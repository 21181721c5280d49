import { tsupConfig } from "../../tsup.shared";

export default tsupConfig(["src/index.ts", "src/testing.ts"]);
