// SMS templates, contacts, lists, CSV imports and campaigns, on top of the sms module's queue. Campaign
// recipients follow the sms module's events in the transactions that emit them; runners are tracked jobs.
import type { MailroomModule } from '../../core/module.ts';
import { campaignRoutes } from './campaign-routes.ts';
import { RUN_QUEUE } from '../jobs/service.ts';
import { CAMPAIGN_KIND, CampaignsService } from './campaigns.ts';
import { ContactImportsService } from './imports.ts';
import { smsContactRoutes } from './routes.ts';
import { CampaignRunner } from './runner.ts';
import { SmsContactsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    smsContacts: SmsContactsService;
    smsContactImports: ContactImportsService;
    smsCampaigns: CampaignsService;
    smsCampaignRunner: CampaignRunner;
  }
}

export const SUPERVISE_QUEUE = 'sms-campaigns.supervise';

export const smsCampaignsModule: MailroomModule = {
  name: 'sms-campaigns',
  create: ({ db, clock, log, config, blobs, jobs, services }) => {
    const settings = (organizationId: string) => services.sms.settingsFor(organizationId);
    const smsContacts = new SmsContactsService({
      db,
      organizations: services.organizations,
      defaultRegion: async (organizationId) => (await settings(organizationId)).defaultRegion,
    });
    const smsContactImports = new ContactImportsService({
      db,
      blobs,
      jobs: services.trackedJobs,
      maxBytes: config.smsCampaigns.importLimit,
      checkList: (tx, organizationId, listId) => smsContacts.getList(organizationId, listId, tx),
      defaultRegion: async (organizationId) => (await settings(organizationId)).defaultRegion,
      wake: () => jobs.wake(RUN_QUEUE),
    });
    const smsCampaigns = new CampaignsService({
      db,
      clock,
      events: services.events,
      jobs: services.trackedJobs,
      sms: services.sms,
      contacts: smsContacts,
      providerAccounts: services.providerAccounts,
      defaultTimeZone: async (organizationId) => (await settings(organizationId)).timeZone,
    });
    const smsCampaignRunner = new CampaignRunner({
      db,
      clock,
      log: log.child({ component: 'sms-campaigns' }),
      sms: services.sms,
      campaigns: smsCampaigns,
      organizationName: async (organizationId) => (await services.organizations.get(organizationId)).name,
      chunk: 1_000,
      inFlight: config.smsCampaigns.inFlight,
      pollMs: 2_000,
    });
    smsCampaigns.onChange = (id) => smsCampaignRunner.changed(id);
    services.trackedJobs.register<{ campaign_id: string }>(CAMPAIGN_KIND, {
      run: (job) => smsCampaignRunner.run(job),
    });
    // Recipients take their messages' statuses in the transactions that report them.
    services.events.onEmit(async (tx, records) => {
      await smsCampaigns.follow(tx, records);
    });
    return { smsContacts, smsContactImports, smsCampaigns, smsCampaignRunner };
  },
  jobs: ({ jobs, services, log }) => {
    // A runner that ended without its campaign ending (its job failed or was cancelled) is replaced.
    jobs.define(SUPERVISE_QUEUE, {
      policy: 'stately',
      retryLimit: 0,
      expireInSeconds: 300,
      handler: async () => {
        for (const c of await services.smsCampaigns.unfinished()) {
          await services.smsCampaigns
            .revive(c.organizationId, c.id)
            .catch((err) => log.error({ err, campaign: c.id }, 'could not revive a campaign runner'));
        }
      },
    });
    jobs.schedule(SUPERVISE_QUEUE, '* * * * *');
  },
  async start({ roles, runtime, services }) {
    if (!roles.workers || !runtime.bus) return;
    // A runner waiting for its messages to go out, or for a move made in another process, looks again.
    runtime.bus.on((event) => {
      const data = event.data as { campaign_id?: string; campaign?: { id: string } };
      const id = data.campaign_id ?? data.campaign?.id;
      if (id && (event.type.startsWith('sms.') || event.type.startsWith('campaign.')))
        services.smsCampaignRunner.changed(id);
    });
  },
  routes: async (app, { services, config, clock }) => {
    await app.register(
      smsContactRoutes(services.smsContacts, services.smsContactImports, config.smsCampaigns.importLimit),
    );
    await app.register(campaignRoutes(services.smsCampaigns, () => clock.now()));
  },
};
