// Helpdesk knowledge base and chatbot: articles in categories with full-text search, and a chatbot that
// answers a customer's questions from the published articles (grounding an OpenAI-compatible model on
// them when one is configured) and hands the conversation to the helpdesk as a ticket when it cannot.
import type { MailroomModule } from '../../core/module.ts';
import { OpenAiCompatibleLlm } from '../../providers/llm/openai-compatible.ts';
import { ChatService } from './chat.ts';
import { kbRoutes } from './routes.ts';
import { KbService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    helpdeskKb: KbService;
    helpdeskChat: ChatService;
  }
}

export const helpdeskKbModule: MailroomModule = {
  name: 'helpdesk-kb',
  create: ({ db, clock, config, log, services }) => {
    const helpdeskKb = new KbService({
      db,
      clock,
      events: services.events,
      publicUrl: config.publicUrl,
      helpCentreUrl: config.helpdeskKb.helpCentreUrl,
    });
    const llm = config.llm
      ? new OpenAiCompatibleLlm({
          baseUrl: config.llm.url,
          apiKey: config.llm.apiKey,
          model: config.llm.model,
          timeoutMs: config.llm.timeoutMs,
          temperature: config.llm.temperature,
        })
      : null;
    const helpdeskChat = new ChatService({
      db,
      clock,
      events: services.events,
      kb: helpdeskKb,
      helpdesk: services.helpdesk,
      llm,
      log: log.child({ component: 'helpdesk-chat' }),
    });
    return { helpdeskKb, helpdeskChat };
  },
  routes: async (app, { services, limiter, config }) => {
    await app.register(
      kbRoutes(services.helpdeskKb, services.helpdeskChat, limiter, {
        perConversationPerMinute: config.helpdeskKb.chatPerConversationPerMinute,
        perIpPerMinute: config.helpdeskKb.chatPerIpPerMinute,
      }),
    );
  },
};
