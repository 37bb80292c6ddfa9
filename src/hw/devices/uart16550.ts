/**
 * National Semiconductor PC16550D UART (the "16550A" of PCs), as COM1 at 0x3F8.
 * Register map and interrupt rules follow the PC16550D datasheet (Tables I-IV).
 *
 * Timing is not modelled: a byte written to THR leaves at once, so the transmitter
 * is always empty (LSR.THRE|TEMT) and polling drivers never wait. Received bytes
 * come from the host through `pushInput`; they wait in a host-side backlog and move
 * into the receiver FIFO (16 bytes, or the 1-byte RBR in non-FIFO mode) as space
 * frees up, which models a flow-controlled sender (QEMU's chardev does the same).
 *
 * The interrupt output is the chip's INTR pin. On a PC board that pin reaches the
 * PIC through a buffer enabled by MCR.OUT2; QEMU does not model that gate and
 * neither do we (the machine may wire it if a guest needs it).
 */
import type { IoSize, PortDevice } from '../bus.js';

// Register offsets from the base port (datasheet Table II).
const RBR_THR_DLL = 0;
const IER_DLM = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

// IER bits.
const IER_RDA = 0x01; // received data available
const IER_THRE = 0x02; // transmitter holding register empty
const IER_RLS = 0x04; // receiver line status
const IER_MS = 0x08; // modem status

// IIR interrupt identification (bits 3:0; bit 0 = 1 means "none pending").
const IIR_NONE = 0x01;
const IIR_RLS = 0x06;
const IIR_RDA = 0x04;
const IIR_TIMEOUT = 0x0c;
const IIR_THRE = 0x02;
const IIR_MS = 0x00;
const IIR_FIFO_ENABLED = 0xc0;

// FCR bits.
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;

// LCR bits.
const LCR_DLAB = 0x80;

// MCR bits.
const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;

// LSR bits.
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_ERRORS = 0x1e; // OE, PE, FE, BI: the line-status interrupt sources
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

// MSR bits: deltas in 3:0, line states in 7:4.
const MSR_DCTS = 0x01;
const MSR_DDSR = 0x02;
const MSR_TERI = 0x04;
const MSR_DDCD = 0x08;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
/** A terminal is attached when not in loopback: CTS, DSR and DCD asserted (as QEMU reports). */
const MSR_CONNECTED = MSR_CTS | MSR_DSR | MSR_DCD;

const FIFO_SIZE = 16;
/** Receiver trigger levels selected by FCR bits 7:6 (datasheet Table IV). */
const RX_TRIGGER = [1, 4, 8, 14];

export class Uart16550 implements PortDevice {
  readonly name: string;
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private lsrErrors = 0; // OE/PE/FE/BI latched until LSR is read
  private msrLines = MSR_CONNECTED;
  private msrDeltas = 0;
  private scr = 0;
  /** Divisor latch. Reset value is unspecified by the datasheet; 12 = 9600 baud. */
  private divisor = 12;
  private fcr = 0;
  /** THRE interrupt pending: set when THR empties or ETBEI is enabled, cleared by IIR read or THR write. */
  private threPending = false;
  private readonly rxFifo: number[] = [];
  private readonly backlog: number[] = [];
  private irqLevel = false;

  constructor(
    private readonly sink: (byte: number) => void,
    private readonly setIrq: (level: boolean) => void = () => {},
    name = 'uart16550',
  ) {
    this.name = name;
  }

  /** Host input (stdin): queued and delivered to the receiver as the guest reads. */
  pushInput(bytes: Iterable<number>): void {
    for (const b of bytes) this.backlog.push(b & 0xff);
    this.refill();
    this.update();
  }

  /** Bytes still waiting on the host side (not yet in the receiver). */
  get pendingInput(): number {
    return this.backlog.length;
  }

  private get fifoEnabled(): boolean {
    return (this.fcr & FCR_ENABLE) !== 0;
  }

  private get rxCapacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  private refill(): void {
    while (this.backlog.length > 0 && this.rxFifo.length < this.rxCapacity)
      this.rxFifo.push(this.backlog.shift()!);
  }

  /** A character arriving at the receiver shift register (loopback path). */
  private receive(byte: number): void {
    if (this.rxFifo.length < this.rxCapacity) {
      this.rxFifo.push(byte);
      return;
    }
    // Overrun. Non-FIFO mode: the new character overwrites RBR; FIFO mode: it is lost
    // and the FIFO is kept (datasheet, LSR bit 1).
    this.lsrErrors |= LSR_OE;
    if (!this.fifoEnabled) this.rxFifo[0] = byte;
  }

  private lsr(): number {
    return (this.rxFifo.length > 0 ? LSR_DR : 0) | this.lsrErrors | LSR_THRE | LSR_TEMT;
  }

  private msr(): number {
    return this.msrLines | this.msrDeltas;
  }

  /** In loopback the modem inputs are wired to the MCR outputs (datasheet, MCR bit 4). */
  private modemInputs(): number {
    if (!(this.mcr & MCR_LOOP)) return MSR_CONNECTED;
    return (
      (this.mcr & MCR_RTS ? MSR_CTS : 0) |
      (this.mcr & MCR_DTR ? MSR_DSR : 0) |
      (this.mcr & MCR_OUT1 ? MSR_RI : 0) |
      (this.mcr & MCR_OUT2 ? MSR_DCD : 0)
    );
  }

  private setModemInputs(lines: number): void {
    const changed = lines ^ this.msrLines;
    if (changed & MSR_CTS) this.msrDeltas |= MSR_DCTS;
    if (changed & MSR_DSR) this.msrDeltas |= MSR_DDSR;
    if (changed & MSR_DCD) this.msrDeltas |= MSR_DDCD;
    // TERI flags only the trailing edge of RI (RI going inactive).
    if (changed & MSR_RI && !(lines & MSR_RI)) this.msrDeltas |= MSR_TERI;
    this.msrLines = lines;
  }

  /** Highest-priority pending interrupt, as IIR bits 3:0 (datasheet Table IV). */
  private pendingId(): number {
    if (this.ier & IER_RLS && this.lsrErrors & LSR_ERRORS) return IIR_RLS;
    if (this.ier & IER_RDA && this.rxFifo.length > 0) {
      // No clock: data below the trigger level is reported at once as a character
      // timeout, as if four character times had passed with no new input.
      if (!this.fifoEnabled || this.rxFifo.length >= RX_TRIGGER[this.fcr >> 6]) return IIR_RDA;
      return IIR_TIMEOUT;
    }
    if (this.ier & IER_THRE && this.threPending) return IIR_THRE;
    if (this.ier & IER_MS && this.msrDeltas) return IIR_MS;
    return IIR_NONE;
  }

  private update(): void {
    const level = this.pendingId() !== IIR_NONE;
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.setIrq(level);
    }
  }

  portIn(offset: number, _size: IoSize): number {
    let v: number;
    switch (offset) {
      case RBR_THR_DLL:
        if (this.lcr & LCR_DLAB) return this.divisor & 0xff;
        v = this.rxFifo.length > 0 ? this.rxFifo.shift()! : 0;
        this.refill();
        break;
      case IER_DLM:
        return this.lcr & LCR_DLAB ? this.divisor >> 8 : this.ier;
      case IIR_FCR: {
        const id = this.pendingId();
        // Reading IIR while THRE is the reported source clears it (datasheet Table IV).
        if (id === IIR_THRE) this.threPending = false;
        v = id | (this.fifoEnabled ? IIR_FIFO_ENABLED : 0);
        break;
      }
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR:
        v = this.lsr();
        this.lsrErrors = 0;
        break;
      case MSR:
        v = this.msr();
        this.msrDeltas = 0;
        break;
      case SCR:
        return this.scr;
      default:
        return 0xff;
    }
    this.update();
    return v;
  }

  portOut(offset: number, _size: IoSize, value: number): void {
    value &= 0xff;
    switch (offset) {
      case RBR_THR_DLL:
        if (this.lcr & LCR_DLAB) {
          this.divisor = (this.divisor & 0xff00) | value;
          return;
        }
        if (this.mcr & MCR_LOOP) this.receive(value);
        else this.sink(value);
        // The byte leaves at once, so THR is empty again: a new THRE interrupt.
        this.threPending = true;
        break;
      case IER_DLM:
        if (this.lcr & LCR_DLAB) {
          this.divisor = (this.divisor & 0xff) | (value << 8);
          return;
        }
        // Enabling ETBEI while THR is empty raises THRE at once (it always is empty here).
        if (value & IER_THRE && !(this.ier & IER_THRE)) this.threPending = true;
        this.ier = value & 0x0f;
        break;
      case IIR_FCR: {
        // The other FCR bits are programmed only together with FCR0; toggling FCR0
        // resets both FIFOs (datasheet, FCR bit 0).
        const enable = value & FCR_ENABLE;
        if ((enable ^ this.fcr) & FCR_ENABLE || (enable && value & FCR_CLEAR_RX)) this.rxFifo.length = 0;
        this.fcr = enable ? value & 0xc9 : 0; // bits 1-2 self-clear; 4-5 reserved
        this.refill();
        break;
      }
      case LCR:
        this.lcr = value;
        return;
      case MCR:
        this.mcr = value & 0x1f;
        this.setModemInputs(this.modemInputs());
        break;
      case LSR:
        // LSR is meant to be read-only; the datasheet leaves writes factory-test defined.
        return;
      case MSR:
        return;
      case SCR:
        this.scr = value;
        return;
    }
    this.update();
  }
}
