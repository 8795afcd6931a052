// An error meant for the person at the keyboard: one line, no stack trace.
// Anything else that escapes a program is a bug and is reported as one.

export class UserError extends Error {
  constructor(
    message: string,
    /** Process exit code to use when this error ends the program. */
    readonly exitCode = 1,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'UserError';
  }
}

/** Runs a program's main function and turns its outcome into an exit code and at most one line. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (error instanceof UserError) {
      console.error(`error: ${error.message}`);
      process.exitCode = error.exitCode;
    } else {
      // A bug, not a user mistake: still one line by default, the stack on request.
      const text = error instanceof Error ? error.message : String(error);
      console.error(`error: unexpected failure: ${text} (set DEBUG=1 to see where)`);
      if (process.env.DEBUG) console.error(error);
      process.exitCode = 70; // EX_SOFTWARE
    }
  }
}
