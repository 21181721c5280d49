export async function maeCommand(_argv: string[]): Promise<number> {
  console.error("pnpm train mae: not implemented yet");
  return 1;
}
