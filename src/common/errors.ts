/**
 * Errors that the user can cause (bad image, bad option, too little memory).
 * The CLI prints their message on one line, with no stack trace.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** An internal invariant was broken: a bug in turtles, never a guest's fault. */
export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}
