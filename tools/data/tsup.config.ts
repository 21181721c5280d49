import { tsupConfig } from "../../tsup.shared";

export default tsupConfig(["src/photos.ts", "src/test-images.ts", "src/text.ts", "src/bundle.ts", "src/tiles.ts"], { dts: false });
