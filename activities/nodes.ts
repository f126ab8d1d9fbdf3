// Node control: starting, stopping, fencing and inspecting the database processes themselves, as
// the cluster profile's `mysql.control` says. The runbooks decide (which node bootstraps, which one
// is fenced); this adapter only carries a decision out, the same way whatever runs the nodes.
//
// kind: process — commands the worker runs, given as argv arrays in the profile (never through a
//   shell). The values put into them ({node}, {host}, {port}, {pod}) are checked against patterns
//   first. The local stack's commands are scripts/stack.sh; elsewhere a wrapper such as ssh.
// kind: kubernetes — the node's pod through the Kubernetes API. Fencing marks the pod; starting,
//   stopping and reading a node's Galera state need something running in the pod (a kubelet, an
//   exec or a Job on its volume) and are refused with NodeControlUnsupported (see the README).
import { spawn } from 'node:child_process';
import { activityInfo, cancellationSignal, cancelled, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ProfileSource } from './cluster';
import { GaleraStateError, parseGrastate, parseRecoveredPosition } from './galera-state';
import type { KubernetesConnector } from './kubernetes';
import { createKubernetesActivities } from './kubernetes';
import { readGaleraStatus, withConnection, type GaleraFacts, type MysqlConnector } from './mysql';
import type { MysqlNodeProfile, NodeAction, ProcessControlProfile } from './profile';

export interface CommandResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface CommandRunner {
  run(argv: string[], options: { cwd?: string; timeoutMs: number; signal?: AbortSignal }): Promise<CommandResult>;
}

const OUTPUT_LIMIT = 256 * 1024;

/** Runs argv[0] with the rest as its arguments, no shell; output kept up to a limit; killed on timeout or abort. */
export function createCommandRunner(): CommandRunner {
  return {
    run(argv, options) {
      return new Promise((resolve, reject) => {
        const [command, ...args] = argv;
        if (!command) {
          reject(new Error('empty command'));
          return;
        }
        const child = spawn(command, args, { cwd: options.cwd, shell: false, stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal, timeout: options.timeoutMs, killSignal: 'SIGTERM' });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-OUTPUT_LIMIT)));
        child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-OUTPUT_LIMIT)));
        child.on('error', (err) => {
          // An abort is reported through 'close' with the signal; only a failure to start lands here alone.
          if ((err as NodeJS.ErrnoException).code !== 'ABORT_ERR') reject(err);
        });
        child.on('close', (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
      });
    },
  };
}

const VALUE_PATTERNS: Record<string, RegExp> = {
  node: /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
  host: /^[A-Za-z0-9][A-Za-z0-9.:-]*$/,
  port: /^\d{1,5}$/,
  pod: /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
};

/**
 * The argv of a node-control command with {node}, {host}, {port} and {pod} put in. Every value is
 * checked against its pattern first (none can start with "-" or hold a "/", a space or a quote),
 * so a value can only ever be the one argument it was put into.
 */
export function commandFor(template: readonly string[], node: Pick<MysqlNodeProfile, 'name' | 'host' | 'port' | 'pod'>): string[] {
  const values: Record<string, string | undefined> = { node: node.name, host: node.host, port: String(node.port), pod: node.pod };
  return template.map((arg) =>
    arg.replace(/\{([a-z]+)\}/g, (_, name: string) => {
      const value = values[name];
      const pattern = VALUE_PATTERNS[name];
      if (value === undefined || !pattern) {
        throw ApplicationFailure.nonRetryable(`node ${node.name}: the command ${JSON.stringify(template)} names {${name}}, which the node does not have`, 'ProfileIncomplete');
      }
      if (!pattern.test(value)) {
        throw ApplicationFailure.nonRetryable(`node ${node.name}: ${name} ${JSON.stringify(value)} is not safe to put into a command (expected ${String(pattern)})`, 'ProfileIncomplete');
      }
      return value;
    }),
  );
}

function tail(textContent: string, lines = 20): string {
  return textContent.trimEnd().split('\n').slice(-lines).join('\n');
}

export interface GaleraNodeState {
  node: string;
  uuid: string;
  /** The node's last committed transaction: from grastate.dat, or from --wsrep-recover when grastate.dat says -1. */
  seqno: number;
  safeToBootstrap: boolean;
  seqnoSource: 'grastate' | 'wsrep-recover';
  grastateSeqno: number;
}

export const FENCED_ANNOTATION = 'db-runbooks/fenced';

/** The heartbeat details of a node command: a retry reads whether the attempt before started it. */
interface CommandProgress {
  node: string;
  action: string;
  commandStarted: boolean;
}

/** What a bootstrap found before it ran: the command's effect already in place, or nothing in the way. */
type BootstrapCheck = { inPlace: string } | { inPlace: null };

export function createNodeControlActivities(deps: {
  profiles: ProfileSource;
  runner: CommandRunner;
  kubernetes: KubernetesConnector;
  /** Reads the Galera nodes' membership before a bootstrap. */
  mysql: MysqlConnector;
  pollIntervalMs?: number;
}) {
  const kubernetes = createKubernetesActivities({ kubernetes: deps.kubernetes });
  const pollIntervalMs = deps.pollIntervalMs ?? 1000;

  /** The node's wsrep status, or null when it does not answer (stopped, or still starting). */
  const galeraFacts = (cluster: string, node: string): Promise<GaleraFacts | null> =>
    withConnection(deps.mysql, cluster, node, (c) => readGaleraStatus(c)).catch((err: unknown) => {
      if (err instanceof ApplicationFailure) throw err;
      return null;
    });

  /**
   * A bootstrap is the one node command that must not run twice: on a node already in the Primary
   * component it starts the node again as a new cluster (MariaDB's galera_new_cluster restarts the
   * service), and on any node while another holds a Primary component it splits the cluster in two.
   * So every attempt reads the membership first; a retry after an attempt that started the command
   * (its worker died: the node may still be starting) first waits up to the command's timeout for the
   * node to come up.
   */
  const checkBeforeBootstrap = async (cluster: string, node: MysqlNodeProfile, control: ProcessControlProfile): Promise<BootstrapCheck> => {
    const others = deps.mysql.nodes(cluster).filter((n) => n.name !== node.name);
    const before = activityInfo().heartbeatDetails as Partial<CommandProgress> | undefined;
    const settleBy = activityInfo().attempt > 1 && before?.commandStarted ? Date.now() + control.timeoutSeconds * 1000 : Date.now();
    for (;;) {
      const own = await galeraFacts(cluster, node.name);
      if (own?.clusterStatus === 'Primary') {
        return { inPlace: `${node.name} is already in a Primary component (size ${own.clusterSize}, ${own.localState}): not bootstrapped again` };
      }
      for (const other of others) {
        const facts = await galeraFacts(cluster, other.name);
        if (facts?.clusterStatus === 'Primary') {
          throw ApplicationFailure.create({
            type: 'BootstrapRefused',
            nonRetryable: true,
            message: `node ${node.name}: bootstrap refused: ${other.name} is in a Primary component of size ${facts.clusterSize} (${facts.localState}); a bootstrap would start a second cluster beside it: start ${node.name} to join it`,
            details: [{ node: node.name, primary: other.name }],
          });
        }
      }
      if (Date.now() >= settleBy) return { inPlace: null };
      heartbeat({ node: node.name, action: 'bootstrap', commandStarted: true, waiting: own ? `wsrep_cluster_status=${own.clusterStatus}` : 'unreachable' });
      if (cancellationSignal().aborted) await cancelled();
      await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
    }
  };

  const controlOf = (cluster: string, nodeName: string) => {
    const m = deps.profiles.get(cluster).mysql;
    const node = m?.nodes.find((n) => n.name === nodeName);
    if (!m || !node) throw ApplicationFailure.nonRetryable(`node: cluster "${cluster}" has no MySQL node "${nodeName}"`, 'UnknownNode');
    if (!m.control) throw ApplicationFailure.nonRetryable(`cluster ${cluster}: the profile has no mysql.control: the runbook cannot start, stop or fence nodes`, 'ProfileIncomplete');
    return { control: m.control, node };
  };

  const unsupported = (cluster: string, action: NodeAction, why: string) =>
    ApplicationFailure.nonRetryable(`cluster ${cluster}: node control cannot ${action}: ${why}`, 'NodeControlUnsupported');

  /** Runs one configured command for the node, heartbeating while it runs; a failure carries its last output lines. */
  const runCommand = async (cluster: string, control: ProcessControlProfile, node: MysqlNodeProfile, action: NodeAction): Promise<CommandResult> => {
    const template = control[action];
    if (!template) throw unsupported(cluster, action, `the profile's mysql.control has no "${action}" command`);
    const argv = commandFor(template, node);
    log.info('running node command', { node: node.name, action, argv });
    // Recorded before the command starts: a retry then knows this attempt may have run it.
    const progress: CommandProgress = { node: node.name, action, commandStarted: true };
    heartbeat(progress);
    const beat = setInterval(() => heartbeat(progress), 5_000);
    let result: CommandResult;
    try {
      result = await deps.runner.run(argv, { cwd: control.cwd, timeoutMs: control.timeoutSeconds * 1000, signal: cancellationSignal() });
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`node ${node.name}: ${action}: ${argv[0]} could not be run: ${(err as Error).message}`, 'NodeCommandFailed');
    } finally {
      clearInterval(beat);
    }
    if (cancellationSignal().aborted) await cancelled();
    if (result.exitCode !== 0) {
      const how = result.signal ? `was killed by ${result.signal}${result.signal === 'SIGTERM' ? ` (timeout ${control.timeoutSeconds}s?)` : ''}` : `exited with ${result.exitCode}`;
      throw ApplicationFailure.create({
        type: 'NodeCommandFailed',
        nonRetryable: true,
        message: `node ${node.name}: ${action} (${argv.join(' ')}) ${how}: ${tail(`${result.stderr}\n${result.stdout}`.trim(), 8) || 'no output'}`,
        details: [{ node: node.name, action, exitCode: result.exitCode }],
      });
    }
    return result;
  };

  return {
    /**
     * Carries out one action on a node: start (join / start as configured), bootstrap (first node
     * of a new Galera cluster), stop, fence (start read-only from now on) or unfence. Start, stop,
     * fence and unfence commands must be idempotent, as `systemctl start|stop` and the local stack's
     * are, since a retry runs them again. Bootstrap is not: it runs only when no Primary component
     * holds the node or any other (see checkBeforeBootstrap).
     */
    async controlNode(request: { cluster: string; node: string; action: Exclude<NodeAction, 'grastate' | 'recover'> }): Promise<{ node: string; action: string; output: string }> {
      const { cluster, action } = request;
      const { control, node } = controlOf(cluster, request.node);
      if (control.kind === 'kubernetes') {
        if (!node.pod) throw ApplicationFailure.nonRetryable(`node ${node.name}: the profile names no pod for it`, 'ProfileIncomplete');
        if (action === 'fence') {
          await kubernetes.annotatePod({ cluster, pod: node.pod, key: FENCED_ANNOTATION, value: 'read-only' });
          return { node: node.name, action, output: `pod ${node.pod} annotated ${FENCED_ANNOTATION}=read-only` };
        }
        if (action === 'unfence') {
          await kubernetes.removePodAnnotation({ cluster, pod: node.pod, key: FENCED_ANNOTATION });
          return { node: node.name, action, output: `annotation ${FENCED_ANNOTATION} removed from pod ${node.pod}` };
        }
        throw unsupported(cluster, action, `starting and stopping database processes in pods needs a kubelet-side agent; only fence and unfence are implemented for kind kubernetes`);
      }
      if (action === 'bootstrap') {
        const check = await checkBeforeBootstrap(cluster, node, control);
        if (check.inPlace !== null) {
          log.info('bootstrap already in place', { node: node.name, attempt: activityInfo().attempt });
          return { node: node.name, action, output: check.inPlace };
        }
      }
      const result = await runCommand(cluster, control, node, action);
      return { node: node.name, action, output: tail(`${result.stdout}${result.stderr}`, 5) };
    },

    /** The node's grastate.dat, and when it says seqno -1, the position from --wsrep-recover. The node must be stopped. */
    async readGaleraState(request: { cluster: string; node: string }): Promise<GaleraNodeState> {
      const { cluster } = request;
      const { control, node } = controlOf(cluster, request.node);
      if (control.kind === 'kubernetes') {
        throw unsupported(cluster, 'grastate', `reading grastate.dat from a pod's volume needs an exec or a Job that a kubelet runs; not implemented for kind kubernetes`);
      }
      const grastate = await runCommand(cluster, control, node, 'grastate');
      let saved;
      try {
        saved = parseGrastate(grastate.stdout);
      } catch (err) {
        if (err instanceof GaleraStateError) throw ApplicationFailure.nonRetryable(`node ${node.name}: ${err.message}`, 'GaleraStateUnreadable');
        throw err;
      }
      const state: GaleraNodeState = { node: node.name, uuid: saved.uuid, seqno: saved.seqno, safeToBootstrap: saved.safeToBootstrap, seqnoSource: 'grastate', grastateSeqno: saved.seqno };
      if (saved.seqno !== -1) return state;
      // A crash leaves -1 in grastate.dat: InnoDB still knows the last committed transaction.
      const recovery = await runCommand(cluster, control, node, 'recover');
      const recovered = parseRecoveredPosition(`${recovery.stdout}\n${recovery.stderr}`);
      if (!recovered) {
        throw ApplicationFailure.nonRetryable(`node ${node.name}: --wsrep-recover printed no "Recovered position": ${tail(recovery.stdout, 5)}`, 'GaleraStateUnreadable');
      }
      log.info('galera position recovered', { node: node.name, uuid: recovered.uuid, seqno: recovered.seqno });
      return { ...state, uuid: recovered.uuid, seqno: recovered.seqno, seqnoSource: 'wsrep-recover' };
    },
  };
}
