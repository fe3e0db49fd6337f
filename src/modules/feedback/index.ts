// Feedback loops: complaint reports (ARF) arriving at VERP return paths and at each hosted domain's
// feedback address, matched to the mail that was sent, recorded, and turned into suppressions. Inbound
// processing calls it (it comes before the inbound module); the Feedback-ID header outbound mail carries
// is written by the delivery module.
import type { MailroomModule } from '../../core/module.ts';
import { feedbackRoutes } from './routes.ts';
import { FeedbackService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    feedback: FeedbackService;
  }
}

export const feedbackModule: MailroomModule = {
  name: 'feedback',
  create: ({ db, config, services }) => ({
    feedback: new FeedbackService({
      db,
      events: services.events,
      suppressions: services.suppressions,
      verpTarget: (address) => services.outbound.verpTarget(address),
      localPart: config.feedback.localPart,
      health: { windowMs: config.health.windowMs, minSample: config.health.minSample },
    }),
  }),
  routes: async (app, { services }) => app.register(feedbackRoutes(services.feedback)),
};
