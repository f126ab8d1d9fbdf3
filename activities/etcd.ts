// etcd: clients resolved from the cluster profile, and the facts the runbooks decide on.
import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';
import { ApplicationFailure } from '@temporalio/common';
import type { ProfileSource } from './cluster';
import type { EtcdProfile } from './profile';
import type { SecretResolver } from './secrets';

export interface EtcdConnector {
  /** A client for the cluster's etcd, or for one of its endpoints only; the caller closes it. */
  connect(cluster: string, endpoint?: string): Promise<Etcd3>;
  profile(cluster: string): EtcdProfile;
}

/** etcd3 retries a dead host for a long time by default; a runbook's own retry policy decides instead. */
const CALL_TIMEOUT_MS = 10_000;

export function createEtcdConnector(deps: { profiles: ProfileSource; secrets: SecretResolver }): EtcdConnector {
  const etcdProfile = (cluster: string) => {
    const profile = deps.profiles.get(cluster);
    if (!profile.etcd) {
      throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" has no etcd section in its profile`, 'ProfileIncomplete');
    }
    return { profile, etcd: profile.etcd };
  };
  return {
    profile: (cluster) => etcdProfile(cluster).etcd,
    async connect(cluster, endpoint) {
      const { profile, etcd } = etcdProfile(cluster);
      const options: IOptions = {
        hosts: endpoint ? [endpoint] : etcd.endpoints,
        dialTimeout: 5_000,
        defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
        faultHandling: { global: noop, host: () => noop },
      };
      if (etcd.username && etcd.password) {
        options.auth = {
          username: etcd.username,
          password: await deps.secrets.resolve(etcd.password, { cluster, field: 'etcd.password', namespace: profile.namespace }),
        };
      }
      return new Etcd3(options);
    },
  };
}

export interface EtcdEndpointFacts {
  endpoint: string;
  reachable: boolean;
  error?: string;
  version?: string;
  dbSizeBytes?: number;
  memberId?: string;
  leaderId?: string;
  raftIndex?: string;
}

export interface EtcdFacts {
  endpoints: EtcdEndpointFacts[];
  members: { id: string; name: string; clientUrls: string[] }[];
}

export function createEtcdActivities(deps: { etcd: EtcdConnector }) {
  return {
    async checkEtcd(request: { cluster: string }): Promise<EtcdFacts> {
      const { cluster } = request;
      const endpoints = deps.etcd.profile(cluster).endpoints;
      const facts: EtcdFacts = { endpoints: [], members: [] };
      for (const endpoint of endpoints) {
        const client = await deps.etcd.connect(cluster, endpoint);
        try {
          const status = await client.maintenance.status();
          // A linearizable read proves the member can serve a quorum read, as `etcdctl endpoint health` does.
          await client.get('health');
          facts.endpoints.push({
            endpoint,
            reachable: true,
            version: status.version,
            dbSizeBytes: Number(status.dbSize),
            memberId: status.header.member_id,
            leaderId: status.leader,
            raftIndex: status.raftIndex,
          });
          if (facts.members.length === 0) {
            const list = await client.cluster.memberList({});
            facts.members = list.members.map((m) => ({ id: m.ID, name: m.name, clientUrls: m.clientURLs }));
          }
        } catch (err) {
          facts.endpoints.push({ endpoint, reachable: false, error: (err as Error).message });
        } finally {
          client.close();
        }
      }
      return facts;
    },
  };
}
