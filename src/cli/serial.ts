/** Guest serial output to stdout, written synchronously as it arrives so nothing is lost on exit. */
import { writeSync } from 'node:fs';

/** One guest's COM1, line-buffered; with a prefix (`turtles up` with several VMs) before every line. */
export class SerialOut {
  private buf: number[] = [];
  private readonly prefix: Buffer;
  /** `write` receives each piece of output (default: synchronously to stdout). */
  constructor(
    prefix = '',
    private readonly write: (chunk: Buffer) => void = (chunk) => writeSync(1, chunk),
  ) {
    this.prefix = Buffer.from(prefix);
  }
  push = (b: number): void => {
    this.buf.push(b);
    // Without a prefix, long lines go out in 4 KiB pieces; with one, lines stay whole up to 64 KiB.
    if (b === 10 || this.buf.length >= (this.prefix.length ? 65536 : 4096)) this.flush();
  };
  /** Write what is buffered; with a prefix, an unfinished last line gets its newline here. */
  flush(): void {
    if (!this.buf.length) return;
    if (this.prefix.length && this.buf[this.buf.length - 1] !== 10) this.buf.push(10);
    this.write(
      this.prefix.length ? Buffer.concat([this.prefix, Buffer.from(this.buf)]) : Buffer.from(this.buf),
    );
    this.buf = [];
  }
}
