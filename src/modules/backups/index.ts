// Backups: an organisation's whole data as one streamed, versioned archive, and restores of it
// (docs/backups.md). Platform administrators only; `mailroom backup` and `mailroom restore` do the same
// from the command line.
import type { MailroomModule } from '../../core/module.ts';
import packageJson from '../../../package.json' with { type: 'json' };
import { backupRoutes } from './routes.ts';
import { BackupsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    backups: BackupsService;
  }
}

export const backupsModule: MailroomModule = {
  name: 'backups',
  create: ({ database, secrets, config, log, services }) => ({
    backups: new BackupsService({
      database,
      secrets,
      jobs: services.trackedJobs,
      organizations: services.organizations,
      log: log.child({ component: 'backups' }),
      hostname: config.hostname,
      version: packageJson.version,
      uploadLimit: config.backups.uploadLimit,
    }),
  }),
  jobs: ({ services }) => services.backups.registerRunners(),
  routes: async (app, { services }) => app.register(backupRoutes(services.backups)),
};
