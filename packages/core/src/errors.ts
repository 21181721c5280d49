/** A checkpoint's weights do not match what the model expects (missing, extra, wrong shape or dtype). */
export class WeightLoadError extends Error {}
