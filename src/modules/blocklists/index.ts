// Blocklists: DNS blocklist monitoring of the sending IPs and the organisations' domains.
import type { MailroomModule } from '../../core/module.ts';
import { registerBlocklistJobs } from './jobs.ts';
import { catalogue } from './lists.ts';
import { blocklistRoutes } from './routes.ts';
import { BlocklistsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    blocklists: BlocklistsService;
  }
}

export const blocklistsModule: MailroomModule = {
  name: 'blocklists',
  create: ({ db, blobs, log, config, services }) => {
    const blocklists = new BlocklistsService({
      db,
      blobs,
      events: services.events,
      domains: services.domains,
      log: log.child({ component: 'blocklists' }),
      lists: catalogue(config.blocklists.extra),
      outboundIps: config.blocklists.outboundIps,
      dnsServers: config.dnsServers,
      timeoutMs: config.blocklists.timeoutMs,
      concurrency: config.blocklists.concurrency,
      intervalMs: config.blocklists.intervalMs,
    });
    // An organisation's first domain puts it on the schedule, in the transaction that adds the domain.
    services.events.onEmit(async (tx, records) => {
      for (const r of records)
        if (r.type === 'domain.created') await blocklists.monitorIn(tx, r.organizationId);
    });
    return { blocklists };
  },
  jobs: ({ jobs, services }) => registerBlocklistJobs(jobs, services.blocklists),
  routes: async (app, { services }) => app.register(blocklistRoutes(services.blocklists)),
};
