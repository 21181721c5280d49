export async function lm4lvCommand(_argv: string[]): Promise<number> {
  console.error("pnpm train lm4lv: not implemented yet");
  return 1;
}
