// A client application writing through a switchover: one row with a sequence number every few ms,
// through a connection to whichever server the routing (the pods' role label) says is primary. On
// any error it drops the connection, asks the routing again and retries with the next number. Only
// a commit the server acknowledged counts; what it wrote is checked on the servers afterwards.
import mysql, { type Connection } from 'mysql2/promise';

export interface Endpoint {
  host: string;
  port: number;
}

export interface Ack {
  seq: number;
  at: number;
  port: number;
}

export interface WriterReport {
  acked: Ack[];
  failures: number;
  lastError: string | null;
  /** The failed attempts with what the client was told (the first 200). */
  errors: { at: number; port: number; message: string }[];
  /** The longest time between two acknowledged writes, in ms: the write unavailability a client saw. */
  longestGapMs: number;
  /** The ports written to, in the order the writer moved between them. */
  endpoints: number[];
}

export class RoutedWriter {
  private running = false;
  private loop?: Promise<void>;
  private seq = 0;
  private readonly acked: Ack[] = [];
  private failures = 0;
  private lastError: string | null = null;
  private readonly errors: { at: number; port: number; message: string }[] = [];

  constructor(
    private readonly options: {
      resolvePrimary: () => Promise<Endpoint>;
      user: string;
      password: string;
      table: string;
      intervalMs?: number;
      /** Sequence numbers start after this one (a table written by earlier runs). */
      firstSeq?: number;
    },
  ) {
    this.seq = options.firstSeq ?? 0;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let connection: Connection | undefined;
    let port = 0;
    const interval = this.options.intervalMs ?? 5;
    while (this.running) {
      try {
        if (!connection) {
          const endpoint = await this.options.resolvePrimary();
          connection = await mysql.createConnection({ host: endpoint.host, port: endpoint.port, user: this.options.user, password: this.options.password, connectTimeout: 2000 });
          port = endpoint.port;
        }
        const seq = ++this.seq;
        await connection.query(`INSERT INTO ${this.options.table} (seq) VALUES (?)`, [seq]);
        this.acked.push({ seq, at: Date.now(), port });
      } catch (err) {
        this.failures += 1;
        this.lastError = (err as Error).message;
        if (this.errors.length < 200) this.errors.push({ at: Date.now(), port, message: this.lastError });
        connection?.destroy();
        connection = undefined;
      }
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
    connection?.destroy();
  }

  /** Acknowledged writes so far. */
  get count(): number {
    return this.acked.length;
  }

  ackedOn(port: number): number {
    return this.acked.filter((a) => a.port === port).length;
  }

  async stop(): Promise<WriterReport> {
    this.running = false;
    await this.loop;
    return RoutedWriter.report(this.acked, this.failures, this.lastError, this.errors);
  }

  static report(acked: Ack[], failures: number, lastError: string | null, errors: WriterReport['errors'] = []): WriterReport {
    let longestGapMs = 0;
    const endpoints: number[] = [];
    for (let i = 0; i < acked.length; i += 1) {
      if (i > 0) longestGapMs = Math.max(longestGapMs, acked[i]!.at - acked[i - 1]!.at);
      if (endpoints.at(-1) !== acked[i]!.port) endpoints.push(acked[i]!.port);
    }
    return { acked: [...acked], failures, lastError, errors: [...errors], longestGapMs, endpoints };
  }
}
