import { tsupConfig } from "../../tsup.shared";

export default tsupConfig(["src/cli.ts"], { dts: false });
