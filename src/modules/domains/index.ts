// Domains: hosted domains, their DNS records, DKIM keys, verification and DNS automation.
import { dnsServers } from '../../core/dns.ts';
import type { MailroomModule } from '../../core/module.ts';
import { registerDomainJobs } from './jobs.ts';
import { domainRoutes } from './routes.ts';
import { DomainsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    domains: DomainsService;
  }
}

export const domainsModule: MailroomModule = {
  name: 'domains',
  create: ({ db, secrets, log, config, services }) => ({
    domains: new DomainsService({
      db,
      secrets,
      events: services.events,
      providers: services.providerAccounts,
      log: log.child({ component: 'domains' }),
      dns: dnsServers({ servers: config.dnsServers, ...config.dns }),
      hostname: config.hostname,
      ...config.domains,
      maxPerOrganization: config.organizationLimits.domains,
    }),
  }),
  jobs: ({ jobs, services }) => registerDomainJobs(jobs, services.domains),
  routes: async (app, { services }) => app.register(domainRoutes(services.domains)),
};
