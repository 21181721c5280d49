export async function lmCommand(_argv: string[]): Promise<number> {
  console.error("pnpm train lm: not implemented yet");
  return 1;
}
