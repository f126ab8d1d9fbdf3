// What every command of the client shares in reading its arguments.

/** Bad usage: one line on stderr and exit code 2. */
export class UsageError extends Error {}

/** An --input option: a JSON object, or a usage error saying what is wrong with it. */
export function parseInputOption(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--input: not valid JSON: ${(err as Error).message}`);
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new UsageError('--input: expected a JSON object');
  return input as Record<string, unknown>;
}
