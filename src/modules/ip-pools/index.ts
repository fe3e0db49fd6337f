// IP pools: the installation's sending IPs (MAILROOM_OUTBOUND_IPS) grouped per organisation, assigned to
// domains and mailboxes, warmed up on a curve, and checked for reverse DNS and blocklistings. Delivery
// asks this module which local address each message leaves from.
import { dnsServers } from '../../core/dns.ts';
import type { MailroomModule } from '../../core/module.ts';
import { CHECK_QUEUE, registerIpPoolJobs } from './jobs.ts';
import { ipPoolRoutes } from './routes.ts';
import { IpPoolsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    ipPools: IpPoolsService;
  }
}

/** Events after which delivery must read an organisation's pools and assignments again. */
const POOLS_CHANGED = /^ip_pool\.(created|updated|deleted|assigned|unassigned)$|^(domain|mailbox)\.deleted$/;

export const ipPoolsModule: MailroomModule = {
  name: 'ip-pools',
  create: ({ db, log, config, clock, services }) => {
    const settings = config.sendingIps;
    const ipPools = new IpPoolsService({
      db,
      events: services.events,
      domains: services.domains,
      mailboxes: services.mailboxes,
      blocklists: services.blocklists,
      clock,
      log: log.child({ component: 'ip-pools' }),
      dns: dnsServers({ servers: config.dnsServers, ...config.dns }),
      ips: settings.addresses,
      hostname: config.hostname,
      heloNames: settings.heloNames,
      warmup: settings.warmup,
      checkIntervalMs: settings.checkIntervalMs,
    });
    // A change made here applies at once (and again when its commit is announced, below).
    services.events.onEmit(async (_tx, records) => {
      if (records.some((r) => POOLS_CHANGED.test(r.type))) ipPools.forget();
    });
    return { ipPools };
  },
  jobs: ({ jobs, services }) => registerIpPoolJobs(jobs, services.ipPools),
  async start({ roles, runtime, services, jobs, config, log, onClose }) {
    const { ipPools } = services;
    runtime.bus?.on((event) => {
      if (POOLS_CHANGED.test(event.type)) ipPools.forget();
    });
    runtime.bus?.onResync(() => ipPools.forget());
    if (!roles.workers || !config.sendingIps.addresses.length) return;
    await ipPools.start();
    onClose(() => ipPools.close());
    // A first check soon after start, rather than at the next scheduled run.
    await jobs
      .send(CHECK_QUEUE, {})
      .catch((err) => log.warn({ err }, 'could not queue the sending IP check'));
  },
  routes: async (app, { services }) => app.register(ipPoolRoutes(services.ipPools)),
};
